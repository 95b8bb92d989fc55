"""Noisy point clouds: denoising by quadric projection, the ``denoise`` switch, and scores against the
points as measured."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from rbfield.cli import main
from rbfield.errors import RbfieldError
from rbfield.geometry.point_cleaning import QuadricScale, project_to_quadrics, project_to_quadrics_adaptive
from rbfield.geometry.point_normals import local_planes
from rbfield.geometry.raw_points import SMOOTHING_RESIDUAL_RATIO, SMOOTHING_SCALES, prepare_points
from rbfield.geometry.shape_metrics import sample_surface
from rbfield.geometry.shapes_io import PointCloud, ShapeWarning, load_shape
from rbfield.geometry.surface_distance import points_to_mesh
from rbfield.tasks.sdf import Reference, load_normalized, load_sdf_field, run_surface, shape_in_domain
from rbfield.tasks.sdf_poisson import poisson_points
from shared_data import shared_file

#: Gaussian noise per axis, as a share of the bounding box's diagonal.
NOISE = 0.0025


def _noisy_scan(mesh_name: str, n_points: int = 20_000):
    """(mesh, noisy points (N, 3), their true normals (N, 3), diagonal) for points sampled from a shared mesh."""
    mesh = load_shape(shared_file("meshes", mesh_name))
    points, normals = sample_surface(mesh.vertices, mesh.faces, n_points, seed=0)
    diagonal = float(np.linalg.norm(np.ptp(mesh.vertices, axis=0)))
    noisy = points + np.random.default_rng(0).normal(scale=NOISE * diagonal, size=points.shape)
    return mesh, noisy, normals, diagonal


def _mean_distance(mesh, points: np.ndarray, diagonal: float) -> float:
    """Mean unsigned distance of points to the mesh, as a share of the diagonal."""
    return float(np.abs(points_to_mesh(points, mesh.vertices, mesh.faces)).mean()) / diagonal


@pytest.mark.parametrize("mesh_name", ["bunny00.off", "fandisk.off"])
def test_quadric_projection_halves_the_distance_to_the_true_surface(mesh_name):
    mesh, noisy, normals, diagonal = _noisy_scan(mesh_name)
    before = _mean_distance(mesh, noisy, diagonal)
    moved = noisy
    after = []
    for _ in range(3):
        moved, normals, _ = project_to_quadrics(moved, normals, 32)
        after.append(_mean_distance(mesh, moved, diagonal))
    # Measured, bunny: 0.199 % as read, then 0.076 / 0.068 / 0.067 %; fandisk 0.198, then 0.080 / 0.074 / 0.075.
    assert before > 0.0018
    assert max(after) < 0.0009  # repeated rounds do not shrink the shape


def test_quadrics_keep_a_clean_curved_surface_where_planes_shrink_it():
    rng = np.random.default_rng(0)
    sphere = rng.normal(size=(2000, 3))
    sphere /= np.linalg.norm(sphere, axis=1, keepdims=True)
    moved, normals, _ = project_to_quadrics(sphere, sphere, 32, chunk=300)  # several chunks
    planes = local_planes(sphere, 32)
    flattened = sphere - ((sphere - planes.centroids) * planes.normals).sum(axis=1, keepdims=True) * planes.normals
    # Measured: largest radial error 0.00023 on quadrics, 0.028 on planes.
    assert np.abs(np.linalg.norm(moved, axis=1) - 1.0).max() < 0.002
    assert np.abs(np.linalg.norm(flattened, axis=1) - 1.0).max() > 0.01
    assert np.abs((normals * sphere).sum(axis=1) - 1.0).max() < 0.01  # the quadrics' normals are radial


def test_the_two_faces_of_a_thin_part_are_not_averaged_together():
    """A plate thinner than a neighbourhood: each face's points keep to their own side."""
    rng = np.random.default_rng(0)
    face = np.column_stack([rng.random((2000, 2)), np.zeros(2000)])
    thickness = 0.02  # a point's 32 neighbours span about 0.07 in the plane
    points = np.concatenate([face, face + [0.0, 0.0, thickness]])
    points[:, 2] += rng.normal(scale=0.002, size=len(points))
    normals = np.repeat([[0.0, 0.0, -1.0], [0.0, 0.0, 1.0]], 2000, axis=0)
    moved, fitted, _ = project_to_quadrics(points, normals, 32)
    inner = (np.abs(points[:, 0] - 0.5) < 0.4) & (np.abs(points[:, 1] - 0.5) < 0.4)
    # Measured: mean |z error| 0.0016 as read, 0.0008 after; with every normal facing +z (fits to both
    # faces at once), 0.011: the faces meet midway.
    assert np.abs(moved[:2000][inner[:2000], 2]).mean() < 0.001
    assert np.abs(moved[2000:][inner[2000:], 2] - thickness).mean() < 0.001
    assert (np.sign(fitted[:, 2]) == np.sign(normals[:, 2])).all()


def test_quadric_residuals_measure_the_noise_and_the_misfit():
    """On a noisy plane the residual is about the noise's variance at any scale; on a ripple finer than the
    wide neighbourhood the wide fit's residual grows, so the adaptive projection keeps the narrow one there."""
    rng = np.random.default_rng(0)
    uv = rng.random((8000, 2))
    ripple = uv[:, 0] > 0.5  # the right half ripples with a wavelength of 0.08 (a 64-neighbourhood spans ~0.1)
    height = np.where(ripple, 0.01 * np.sin(2 * np.pi * uv[:, 1] / 0.08), 0.0)
    noise = 0.001
    points = np.column_stack([uv, height + rng.normal(scale=noise, size=len(uv))])
    normals = np.tile([0.0, 0.0, 1.0], (len(points), 1))
    narrow, wide = (project_to_quadrics(points, normals, scale) for scale in SMOOTHING_SCALES)
    inner = (np.abs(uv - 0.5) < 0.4).all(axis=1) & (np.abs(uv[:, 0] - 0.5) > 0.1)
    flat, rippled = inner & ~ripple, inner & ripple
    # Measured: median residual / noise^2 on the flat half 0.78 (narrow) and 0.85 (wide); on the ripple
    # 2.9 and 8.7 (neither quadric follows a whole wave, the wide one less).
    for fit in (narrow, wide):
        assert 0.5 < np.median(fit.residuals[flat]) / noise**2 < 1.2
    assert np.median(wide.residuals[rippled]) > 2 * np.median(narrow.residuals[rippled])
    adaptive = project_to_quadrics_adaptive(points, normals, SMOOTHING_SCALES, SMOOTHING_RESIDUAL_RATIO)
    kept_wide = adaptive.residuals == wide.residuals
    assert kept_wide[flat].mean() > 0.9 and kept_wide[rippled].mean() < 0.2

    def error(moved):
        return np.abs(moved[:, 2] - height)[inner].mean()

    # Measured: wide kept on 99.4 % of the flat half and 2.9 % of the ripple; mean height error 0.000433
    # adaptive, 0.000454 narrow, 0.000634 wide (0.00079 as read).
    assert error(adaptive.points) < min(error(narrow.points), error(wide.points))


def test_few_same_side_neighbours_leave_a_point_where_it_is():
    rng = np.random.default_rng(0)
    points = np.column_stack([rng.random((40, 2)), np.zeros(40)])
    normals = np.tile([0.0, 0.0, 1.0], (40, 1))
    normals[:35] *= -1  # the last five see only each other on their side
    moved, fitted, residuals = project_to_quadrics(points, normals, QuadricScale(32, width=0.8))
    np.testing.assert_array_equal(moved[35:], points[35:])
    np.testing.assert_array_equal(fitted[35:], normals[35:])
    assert np.isinf(residuals[35:]).all() and np.isfinite(residuals[:35]).all()


@pytest.mark.parametrize("mesh_name", ["bunny00.off", "camel.off"])
def test_adaptive_scales_leave_less_noise_than_one_scale(mesh_name):
    mesh, noisy, truth, diagonal = _noisy_scan(mesh_name)
    one_scale, adaptive = noisy, noisy
    normals_one, normals_adaptive = truth, truth
    for _ in range(2):
        one_scale, normals_one, _ = project_to_quadrics(one_scale, normals_one, 32)
        adaptive, normals_adaptive, _ = project_to_quadrics_adaptive(
            adaptive, normals_adaptive, SMOOTHING_SCALES, SMOOTHING_RESIDUAL_RATIO
        )
    # Measured (% of the diagonal, true normals for the side test): bunny 0.0660 against 0.0681 on 32
    # neighbours, camel 0.0675 against 0.0714.
    assert _mean_distance(mesh, adaptive, diagonal) < 0.98 * _mean_distance(mesh, one_scale, diagonal)


def test_denoising_keeps_the_orientation_of_estimated_normals():
    _, noisy, truth, _ = _noisy_scan("bunny00.off")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ShapeWarning)
        prepared = prepare_points(noisy, None, "bunny", outliers="keep")
    # Measured: 14 of 20,000 turned the wrong way (the ears); one round of fits to neighbours of both faces: 62.
    assert prepared.preparation.smoothing_rounds == 2
    assert ((prepared.normals * truth).sum(axis=1) < 0).sum() <= 25


def test_noisy_points_are_denoised_unless_switched_off():
    mesh, noisy, _, diagonal = _noisy_scan("bunny00.off")
    with pytest.warns(ShapeWarning, match="moved onto quadrics fitted to 32-64 neighbours in 2 round"):
        denoised = prepare_points(noisy, None, "bunny")
    assert denoised.preparation.smoothing_rounds == 2
    assert denoised.preparation.noise_after < 0.001 < 0.002 < denoised.preparation.noise * 1.1
    assert _mean_distance(mesh, denoised.points, diagonal) < 0.5 * _mean_distance(mesh, denoised.read_points, diagonal)
    with pytest.warns(ShapeWarning, match="kept as read"):
        as_read = prepare_points(noisy, None, "bunny", denoise="off")
    assert as_read.read_points is None and as_read.preparation.smoothing_rounds == 0
    np.testing.assert_array_equal(as_read.points, denoised.read_points)
    with pytest.raises(RbfieldError, match="denoise: choose one of auto, off"):
        prepare_points(noisy, None, "bunny", denoise="on")


def test_clean_points_are_not_moved():
    mesh = load_shape(shared_file("meshes", "bunny00.off"))
    points, normals = sample_surface(mesh.vertices, mesh.faces, 20_000, seed=0)
    prepared = prepare_points(points, normals, "bunny", outliers="keep")
    assert prepared.read_points is None and prepared.preparation.smoothing_rounds == 0
    np.testing.assert_array_equal(prepared.points, points)


def test_scores_and_poisson_take_the_points_as_measured(tmp_path):
    _, noisy, _, _ = _noisy_scan("bunny00.off", 5_000)
    path = tmp_path / "noisy.xyz"
    np.savetxt(path, noisy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ShapeWarning)
        cloud, normalization = load_normalized(path, outliers="keep")
    assert isinstance(cloud, PointCloud) and cloud.read_points is not None
    assert not np.allclose(cloud.points, cloud.read_points)
    # Both sets are in the domain: the read points are the file's, mapped like the fitted ones.
    np.testing.assert_allclose(normalization.inverse(cloud.read_points), noisy, rtol=0, atol=1e-9)
    assert Reference(cloud).points is cloud.read_points
    assert poisson_points(cloud)[0] is cloud.read_points


def test_denoise_flag_reaches_the_fit(tmp_path):
    _, noisy, _, _ = _noisy_scan("bunny00.off", 5_000)
    path = tmp_path / "noisy.xyz"
    np.savetxt(path, noisy)
    fast = ["--params", "60k", "--steps", "30", "--batch", "1024", "--res", "32", "--metric-samples", "2000"]
    for mode, rounds in (("auto", 2), ("off", 0)):
        out = tmp_path / mode
        main(["fit", "sdf", str(path), "--out", str(out), "--quiet", "--denoise", mode, *fast])
        assert json.loads((out / "metrics.json").read_text())["point_cloud"]["smoothing_rounds"] == rounds
        # The run remembers how it read its cloud, so that `export mesh --surface open` trims to the same points.
        recorded = json.loads((out / "config.json").read_text())["point_options"]
        assert recorded == {"normals": "auto", "outliers": "remove", "denoise": mode}
        _, _, options = run_surface(out)
        _, normalization = load_sdf_field(out, "cpu")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ShapeWarning)
            assert (shape_in_domain(path, normalization, **options).read_points is None) == (mode == "off")
