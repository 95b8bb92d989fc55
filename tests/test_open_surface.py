"""Open surfaces: ``--surface open`` trims the caps of a fitted SDF's mesh; closed inputs stay closed."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import trimesh

from rbfield.cli import main
from rbfield.errors import RbfieldError
from rbfield.geometry import open_surface
from rbfield.geometry.edge_defects import edge_defects
from rbfield.geometry.marching_cubes import extract_mesh
from rbfield.geometry.open_surface import (
    OPEN_WARNING_SHARE,
    Support,
    boundary_edges,
    boundary_summary,
    check_surface_mode,
    finish_surface,
    open_surface_hint,
)
from rbfield.geometry.shapes_io import Mesh, Normalization, PointCloud, load_shape
from rbfield.geometry.triangles import face_areas, face_cross_products
from rbfield.signals.sdf import winding_sdf
from shared_data import shared_file

FIT = ["--params", "50k", "--steps", "300", "--res", "64", "--quiet", "--eval-every", "0"]
FIT += ["--metric-samples", "20000", "--threads", "1"]
#: A trimmed rim may differ from the true boundary by this share of its length: the field's fit,
#: the marching-cubes zigzag left after smoothing and the trimming offset of about tau.
BOUNDARY_TOLERANCE = 0.15


def sphere_mesh(centre: np.ndarray, radius: float, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """The analytic sphere's zero set by marching cubes: a perfect closed fit."""
    centre_t = torch.tensor(centre)
    return extract_mesh(lambda x: (x.double() - centre_t).norm(dim=1) - radius, resolution)


def test_boundary_summary_of_a_square_and_a_closed_box():
    square = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], dtype=float)
    assert boundary_summary(square, np.array([[0, 1, 2], [0, 2, 3]])) == {"boundary_length": 4.0, "boundary_loops": 1}
    box = trimesh.creation.box()
    assert boundary_summary(np.asarray(box.vertices), np.asarray(box.faces)) == {
        "boundary_length": 0.0,
        "boundary_loops": 0,
    }


def test_a_hemisphere_cloud_comes_back_open_along_its_rim():
    """A sphere meshed from its exact SDF carries a cap over the lower half that 3,000 points of
    the upper hemisphere do not support: open mode removes it, leaving one rim near the equator."""
    rng = np.random.default_rng(0)
    directions = rng.normal(size=(6000, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    directions = directions[directions[:, 2] > 0]
    centre, radius = np.full(3, 0.5), 0.3
    cloud = PointCloud(centre + radius * directions, directions)
    vertices, faces = sphere_mesh(centre, radius, 64)
    closed = finish_surface("closed", vertices, faces, cloud, 64, 0.01)
    assert closed[2]["boundary_loops"] == 0 and closed[2]["capped_area_share"] > 0.4
    assert open_surface_hint(closed[2]) is not None
    kept_vertices, kept_faces, report = finish_surface("open", vertices, faces, cloud, 64, 0.01)
    assert report["boundary_loops"] == 1
    rim = 2 * np.pi * radius
    assert abs(report["boundary_length"] - rim) < BOUNDARY_TOLERANCE * rim
    assert kept_vertices[kept_faces].reshape(-1, 3)[:, 2].min() > centre[2] - 2 * report["trim_threshold"]
    assert edge_defects(kept_faces).non_manifold == 0


def test_a_thin_shell_around_an_open_sheet_loses_its_back(monkeypatch):
    """A field may wrap an open sheet in a thin closed shell whose two sides both lie near the input:
    here a shell 0.03 thick around a sphere, against 3,000 points (and outward normals) of its upper
    hemisphere. The inner side faces against the points' normals and is trimmed as a back face,
    leaving the outer upper half with one rim; without the rule both sides stay (two rims)."""
    rng = np.random.default_rng(0)
    directions = rng.normal(size=(6000, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    directions = directions[directions[:, 2] > 0]
    centre, radius, half_thickness = np.full(3, 0.5), 0.3, 0.015
    cloud = PointCloud(centre + radius * directions, directions)
    centre_t = torch.tensor(centre)
    vertices, faces = extract_mesh(lambda x: ((x.double() - centre_t).norm(dim=1) - radius).abs() - half_thickness, 128)
    kept_vertices, kept_faces, report = finish_surface("open", vertices, faces, cloud, 128, 0.01)
    assert report["boundary_loops"] == 1
    corners = kept_vertices[kept_faces]
    outward = face_cross_products(kept_vertices, kept_faces)
    facing_out = (outward * (corners.mean(axis=1) - centre)).sum(axis=1) > 0
    assert np.linalg.norm(outward[facing_out], axis=1).sum() > 0.99 * np.linalg.norm(outward, axis=1).sum()
    assert np.linalg.norm(corners.reshape(-1, 3) - centre, axis=1).min() > radius
    monkeypatch.setattr(open_surface, "BACK_FACE_COSINE", -2.0)  # no face is a back face
    assert finish_surface("open", vertices, faces, cloud, 128, 0.01)[2]["boundary_loops"] == 2


def test_a_well_sampled_closed_cloud_loses_nothing():
    rng = np.random.default_rng(1)
    directions = rng.normal(size=(4000, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    cloud = PointCloud(0.5 + 0.3 * directions, directions)
    vertices, faces = sphere_mesh(np.full(3, 0.5), 0.3, 64)
    kept_vertices, kept_faces, report = finish_surface("open", vertices, faces, cloud, 64, 0.01)
    assert report["unsupported_area_share"] == 0.0 and report["boundary_loops"] == 0
    assert len(kept_faces) == len(faces)
    assert open_surface_hint(report) is None


def test_a_hole_cut_from_a_closed_mesh_comes_back_as_a_boundary_loop_there():
    """The elephant without the faces within 0.08 of one vertex, meshed from its own winding-number
    SDF (which caps the hole): open mode reopens the hole, and only there."""
    shape = load_shape(shared_file("meshes", "elephant.off"))
    mesh = Mesh(Normalization.fit(shape.vertices).forward(shape.vertices), shape.faces)
    centroids = mesh.vertices[mesh.faces].mean(axis=1)
    areas = face_areas(mesh.vertices, mesh.faces)
    candidates = mesh.vertices[:: len(mesh.vertices) // 100]
    covered = [areas[np.linalg.norm(centroids - c, axis=1) < 0.08].sum() for c in candidates]
    centre = candidates[int(np.argmax(covered))]  # where a ball of 0.08 removes the most area
    holed = Mesh(mesh.vertices, mesh.faces[np.linalg.norm(centroids - centre, axis=1) > 0.08])
    vertices, faces = extract_mesh(lambda x: torch.as_tensor(winding_sdf(holed, x.numpy())), 96)
    kept_vertices, kept_faces, report = finish_surface("open", vertices, faces, holed, 96, 0.01)
    assert report["boundary_loops"] == 1
    rim = kept_vertices[np.unique(boundary_edges(kept_faces))]
    assert np.linalg.norm(rim - centre, axis=1).max() < 0.08 + 0.02


@pytest.fixture(scope="module")
def elephant_run(tmp_path_factory):
    """A tiny closed-mode neurbf fit of the (closed) elephant scan."""
    out = tmp_path_factory.mktemp("elephant")
    assert main(["fit", "sdf", shared_file("meshes", "elephant.off"), "--out", str(out), *FIT]) == 0
    return out


def test_a_closed_scan_stays_watertight_in_both_modes(elephant_run, tmp_path):
    metrics = json.loads((elephant_run / "metrics.json").read_text())
    assert (
        metrics["surface"] == "closed" and json.loads((elephant_run / "config.json").read_text())["surface"] == "closed"
    )
    assert metrics["boundary_loops"] == 0 and metrics["boundary_length"] == 0.0
    assert metrics["capped_area_share"] < 0.02
    assert edge_defects(trimesh.load(elephant_run / "mesh.ply", process=False).faces).open == 0
    out = tmp_path / "open.ply"
    assert main(["export", "mesh", str(elephant_run), "--res", "64", "--surface", "open", "--out", str(out)]) == 0
    assert edge_defects(trimesh.load(out, process=False).faces).open == 0


def test_an_open_scan_fit_warns_when_closed_and_opens_on_export(tmp_path, capsys):
    """The elephant without the faces within 0.25 of its highest vertex (an open mesh): the closed
    fit caps the hole and says so; the open export has one rim, near the hole's."""
    shape = load_shape(shared_file("meshes", "elephant.off"))
    centroids = shape.vertices[shape.faces].mean(axis=1)
    radius = 0.25 * np.ptp(shape.vertices, axis=0).max()
    centre = shape.vertices[np.argmax(shape.vertices[:, 2])]
    faces = shape.faces[np.linalg.norm(centroids - centre, axis=1) > radius]
    path = tmp_path / "holed.ply"
    trimesh.Trimesh(shape.vertices, faces, process=False).export(path)
    run = tmp_path / "run"
    assert main(["fit", "sdf", str(path), "--out", str(run), *FIT]) == 0
    warnings = [line for line in capsys.readouterr().out.splitlines() if "--surface open" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: ")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["boundary_loops"] == 0 and metrics["capped_area_share"] > OPEN_WARNING_SHARE
    out = tmp_path / "open.ply"
    assert main(["export", "mesh", str(run), "--res", "64", "--surface", "open", "--out", str(out)]) == 0
    opened = trimesh.load(out, process=False)
    found = boundary_summary(np.asarray(opened.vertices), np.asarray(opened.faces))
    truth = boundary_summary(shape.vertices, faces)
    assert found["boundary_loops"] == 1
    # The input's rim is the zigzag of whole coarse triangles, longer than the smooth rim a fit finds
    # (0.69 of it here), so only a wide band is asserted.
    assert 0.55 < found["boundary_length"] / truth["boundary_length"] < 1.15


@pytest.mark.parametrize("command", [["fit", "sdf", "shape.off"], ["export", "mesh", "run", "--out", "m.ply"]])
def test_a_bad_surface_mode_is_one_line_error(command, capsys):
    with pytest.raises(SystemExit) as exit:
        main([*command, "--surface", "ajar"])
    assert exit.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--surface" in err[0] and "'closed', 'open'" in err[0]
    with pytest.raises(RbfieldError, match="closed, open"):
        check_surface_mode("ajar")


def test_support_spacing_is_the_mean_distance_to_neighbours():
    grid = np.stack(np.meshgrid(np.arange(20.0), np.arange(20.0), [0.0]), axis=-1).reshape(-1, 3) * 0.01
    support = Support.of(PointCloud(grid, np.tile([0.0, 0.0, 1.0], (len(grid), 1))))
    inner = np.all((grid[:, :2] > 0.015) & (grid[:, :2] < 0.175), axis=1)
    # 4 neighbours at 0.01, 4 at 0.01 * sqrt(2)
    assert np.allclose(support.spacing[inner], 0.01 * (4 + 4 * np.sqrt(2)) / 8)
