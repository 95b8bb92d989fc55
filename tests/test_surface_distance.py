"""Mesh-to-mesh and mesh-to-points distances: analytic values on spheres, known noise on a real scan."""

from __future__ import annotations

import math

import numpy as np
import pytest
import trimesh
from scipy.spatial import cKDTree

from rbfield.errors import RbfieldError
from rbfield.geometry.nearest import nearest
from rbfield.geometry.shape_metrics import sample_surface
from rbfield.geometry.shapes_io import load_shape
from rbfield.geometry.surface_distance import bbox_diagonal, mesh_to_mesh, mesh_to_points, points_to_mesh
from shared_data import shared_file

SAMPLES = 50_000


@pytest.fixture(scope="module")
def sphere() -> trimesh.Trimesh:
    """A unit icosphere: 20,480 faces, within 2e-4 of the unit sphere."""
    return trimesh.creation.icosphere(subdivisions=5)


def test_chunked_nearest_matches_one_query():
    rng = np.random.default_rng(0)
    points, queries = rng.random((500, 3)), rng.random((1000, 3))
    tree = cKDTree(points)
    distances, rows = nearest(tree, queries, chunk=7)
    expected_distances, expected_rows = tree.query(queries, k=1)
    np.testing.assert_array_equal(rows, expected_rows)
    np.testing.assert_allclose(distances, expected_distances)


def test_a_mesh_against_itself_scores_only_the_sampling_floor(sphere):
    m = mesh_to_mesh(sphere.vertices, sphere.faces, sphere.vertices, sphere.faces, samples=SAMPLES)
    # Two independent uniform samplings of a surface of area A, N points each, lie a mean
    # 0.5 sqrt(A / N) apart (nearest neighbours of a planar Poisson process): 0.0079 here.
    floor = 0.5 * math.sqrt(sphere.area / SAMPLES)
    assert m["chamfer_l1"] == pytest.approx(floor, rel=0.05)
    assert m["fscore_1pct"] == 1.0 and m["fscore_0.5pct"] > 0.95
    assert m["nae_deg"] < 1.0 and m["normal_consistency"] > 0.999


def test_a_concentric_sphere_scores_its_offset(sphere):
    offset = 0.05
    m = mesh_to_mesh(sphere.vertices * (1 + offset), sphere.faces, sphere.vertices, sphere.faces, samples=SAMPLES)
    # Every point lies `offset` from the other sphere; the sample spacing adds at most 2 % at 50,000 samples.
    assert m["chamfer_l1"] == pytest.approx(offset, rel=0.02)
    assert m["chamfer_l2"] == pytest.approx(offset**2, rel=0.04)
    assert m["chamfer_l1_rel"] == pytest.approx(m["chamfer_l1"] / bbox_diagonal(sphere.vertices))
    # 0.05 is 1.4 % of the diagonal (2 sqrt(3)), beyond both F-score thresholds.
    assert m["fscore_0.5pct"] == 0.0 and m["fscore_1pct"] == 0.0


def test_far_apart_meshes_score_fscore_zero_and_empty_meshes_infinity(sphere):
    far = mesh_to_mesh(sphere.vertices + 10.0, sphere.faces, sphere.vertices, sphere.faces, samples=1000)
    # A unit sphere's points lie a mean D + 1 / (3 D) from a centre at distance D, so 1 less from its sphere.
    centres = 10 * math.sqrt(3)
    assert far["fscore_1pct"] == 0.0 and far["chamfer_l1"] == pytest.approx(centres + 1 / (3 * centres) - 1, rel=0.01)
    empty = mesh_to_mesh(np.zeros((0, 3)), np.zeros((0, 3), int), sphere.vertices, sphere.faces)
    assert empty["chamfer_l1"] == math.inf and empty["fscore_0.5pct"] == 0.0 and empty["nae_deg"] is None
    flat = mesh_to_points(np.zeros((3, 3)), np.array([[0, 1, 2]]), sphere.vertices)
    assert flat["points_to_mesh_mean"] == math.inf and flat["mesh_to_points_p95_rel"] == math.inf
    with pytest.raises(RbfieldError, match="reference mesh has no faces"):
        mesh_to_mesh(sphere.vertices, sphere.faces, np.zeros((0, 3)), np.zeros((0, 3), int))
    with pytest.raises(RbfieldError, match="no input points"):
        mesh_to_points(sphere.vertices, sphere.faces, np.zeros((0, 3)))


def test_points_to_mesh_is_exact_on_a_sphere(sphere):
    rng = np.random.default_rng(1)
    directions = rng.normal(size=(2000, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    radii = rng.uniform(0.5, 1.5, size=2000)
    distances = points_to_mesh(directions * radii[:, None], sphere.vertices, sphere.faces, chunk=300)
    np.testing.assert_allclose(distances, np.abs(radii - 1), atol=3e-4)  # the icosphere's facets sit 2e-4 inside


def test_both_way_distances_of_a_scan_and_noisy_points_of_it():
    bunny = load_shape(shared_file("meshes", "bunny00.off"))
    diagonal = bbox_diagonal(bunny.vertices)
    points, _ = sample_surface(bunny.vertices, bunny.faces, 20_000, seed=3)
    exact = mesh_to_points(bunny.vertices, bunny.faces, points, samples=SAMPLES)
    assert exact["points_to_mesh_p95"] < 1e-9 * diagonal
    spacing = math.sqrt(trimesh.Trimesh(bunny.vertices, bunny.faces).area / len(points))
    assert 0.3 * spacing < exact["mesh_to_points_mean"] < 0.7 * spacing  # about half the point spacing

    sigma = 0.0025 * diagonal
    noisy = points + np.random.default_rng(4).normal(scale=sigma, size=points.shape)
    m = mesh_to_points(bunny.vertices, bunny.faces, noisy, samples=SAMPLES)
    # Noise of sigma per axis moves a point off the surface by |normal component|: mean sigma sqrt(2/pi).
    assert m["points_to_mesh_mean"] == pytest.approx(sigma * math.sqrt(2 / math.pi), rel=0.1)
    assert m["points_to_mesh_p95"] == pytest.approx(1.96 * sigma, rel=0.1)
    assert m["points_to_mesh_mean_rel"] == pytest.approx(m["points_to_mesh_mean"] / bbox_diagonal(noisy))
    assert m["mesh_to_points_mean"] > exact["mesh_to_points_mean"]
