"""Reading shapes in every format, normalizing them, and refusing bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import trimesh

from rbfield.cli import main
from rbfield.errors import RbfieldError
from rbfield.geometry.edge_defects import EdgeDefects, edge_defects
from rbfield.geometry.marching_cubes import check_resolution, extract_mesh
from rbfield.geometry.shapes_io import (
    FILL,
    Mesh,
    Normalization,
    PointCloud,
    ShapeWarning,
    load_shape,
    save_mesh,
)
from shared_data import shared_file


@pytest.fixture(scope="module")
def fandisk() -> Mesh:
    return load_shape(shared_file("meshes", "fandisk.off"))


@pytest.mark.parametrize("extension", ["obj", "ply", "stl", "glb"])
def test_mesh_formats_round_trip(fandisk, tmp_path, extension):
    path = tmp_path / f"fandisk.{extension}"
    trimesh.Trimesh(fandisk.vertices, fandisk.faces, process=False).export(path)
    loaded = load_shape(path)
    assert isinstance(loaded, Mesh)
    assert len(loaded.faces) == len(fandisk.faces)
    assert len(loaded.vertices) == len(fandisk.vertices)  # STL's per-face copies are welded
    np.testing.assert_allclose(np.sort(loaded.vertices, axis=0), np.sort(fandisk.vertices, axis=0), atol=1e-5)


def test_point_cloud_formats(tmp_path):
    cloud = load_shape(shared_file("meshes", "kitten.xyz"))
    assert isinstance(cloud, PointCloud) and cloud.points.shape == (5210, 3)
    np.testing.assert_allclose(np.linalg.norm(cloud.normals, axis=1), 1.0, atol=1e-6)
    pwn = tmp_path / "kitten.pwn"
    np.savetxt(pwn, np.hstack([cloud.points, cloud.normals]))
    assert load_shape(pwn).points.shape == (5210, 3)
    ply = tmp_path / "kitten.ply"
    trimesh.PointCloud(cloud.points).export(ply)  # no normals stored
    with pytest.warns(ShapeWarning, match="no normals"):
        estimated = load_shape(ply)
    # Estimated normals agree (up to the orientation heuristic) with the scan's own.
    agreement = np.abs((estimated.normals * cloud.normals).sum(1))
    assert np.median(agreement) > 0.9


def test_normalization_round_trip(fandisk):
    normalization = Normalization.fit(fandisk.vertices)
    inside = normalization.forward(fandisk.vertices)
    extent = inside.max(0) - inside.min(0)
    assert extent.max() == pytest.approx(FILL)
    assert inside.min() >= 0.0 and inside.max() <= 1.0
    np.testing.assert_allclose(normalization.inverse(inside), fandisk.vertices, atol=1e-9)
    assert Normalization.from_dict(normalization.to_dict()) == normalization


def _write(path, text):
    path.write_text(text)
    return path


def test_bad_inputs_get_one_clear_error(tmp_path):
    cases = {
        "empty file": (_write(tmp_path / "empty.off", ""), "empty"),
        "empty mesh": (_write(tmp_path / "none.off", "OFF\n0 0 0\n"), "empty"),
        "nan vertices": (_write(tmp_path / "nan.obj", "v 0 0 0\nv 1 0 nan\nv 0 1 0\nf 1 2 3\n"), "NaN"),
        "few points": (_write(tmp_path / "few.xyz", "0 0 0 0 0 1\n1 0 0 0 0 1\n0 1 0 0 0 1\n"), "only 3 points"),
        "unknown extension": (_write(tmp_path / "shape.abc", "hello"), "unknown extension"),
        "bad columns": (_write(tmp_path / "bad.xyz", "0 0\n1 1\n"), "numbers per line"),
        "missing": (tmp_path / "missing.obj", "no such file"),
    }
    for name, (path, message) in cases.items():
        with pytest.raises(RbfieldError, match=message):
            load_shape(path)


def test_open_mesh_warns_but_loads(fandisk, tmp_path):
    path = tmp_path / "open.obj"
    save_mesh(path, fandisk.vertices, fandisk.faces[10:])
    with pytest.warns(ShapeWarning, match="not watertight"):
        mesh = load_shape(path)
    assert len(mesh.faces) == len(fandisk.faces) - 10


TETRAHEDRON = np.array([[0, 2, 1], [0, 1, 3], [1, 2, 3], [0, 3, 2]])


def test_edge_defects_of_a_tetrahedron():
    assert edge_defects(TETRAHEDRON) == EdgeDefects(open=0, non_manifold=0, misoriented=0)
    assert edge_defects(TETRAHEDRON[1:]) == EdgeDefects(open=3, non_manifold=0, misoriented=0)
    flipped = TETRAHEDRON.copy()
    flipped[0] = flipped[0, ::-1]
    assert edge_defects(flipped) == EdgeDefects(open=0, non_manifold=0, misoriented=3)
    fin = np.vstack([TETRAHEDRON, [[0, 1, 4]]])  # a fourth face on edge 0-1
    assert edge_defects(fin) == EdgeDefects(open=2, non_manifold=1, misoriented=0)


def test_clean_scan_loads_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ShapeWarning)
        load_shape(shared_file("meshes", "fandisk.off"))


@pytest.mark.parametrize("holes", [0, 10])
def test_a_face_flipped_against_its_neighbours_warns(fandisk, tmp_path, holes):
    """Closed or open: the flipped face is reported either way."""
    faces = fandisk.faces.copy()
    faces[len(faces) // 2] = faces[len(faces) // 2, ::-1]
    path = tmp_path / "flipped.obj"
    save_mesh(path, fandisk.vertices, faces[holes:])
    with pytest.warns(ShapeWarning) as caught:
        load_shape(path)
    messages = [str(w.message) for w in caught]
    assert any("wound against their neighbours (misoriented edges: 3)" in m for m in messages)
    assert any("not watertight" in m for m in messages) == (holes > 0)


def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys):
    assert main(["fit", "sdf", str(_write(tmp_path / "s.abc", "x")), "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("share", ["2", "-0.1", "abc"])
def test_cli_refuses_a_piece_share_outside_0_1(share, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "mesh", "run", "--out", "mesh.ply", "--min-piece", share])
    assert exit_info.value.code == 2
    assert "--min-piece: must be a share between 0 and 1" in capsys.readouterr().err


@pytest.mark.parametrize("step", ["-0.001", "0.5", "abc"])
def test_cli_refuses_a_gradient_step_outside_0_to_0_01(step, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "sdf", "shape.off", "--gradient-step", step])
    assert exit_info.value.code == 2
    assert "--gradient-step: must be 0 (exact gradients) or a step up to 0.01" in capsys.readouterr().err


@pytest.mark.parametrize("count", ["999", "-5", "1e6", "many"])
def test_cli_refuses_too_few_metric_samples(count, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "sdf", "run", "--against", "shape.off", "--metric-samples", count])
    assert exit_info.value.code == 2
    assert "--metric-samples: must be an integer >= 1000" in capsys.readouterr().err


def test_marching_cubes_refuses_resolutions_that_do_not_fit():
    with pytest.raises(RbfieldError, match="GB"):
        check_resolution(100_000)
    with pytest.raises(RbfieldError, match="too small"):
        check_resolution(4)
    check_resolution(512)  # the 512^3 must be allowed


def test_sparse_marching_cubes_of_a_sphere():
    calls = []

    def sphere(x):
        calls.append(len(x))
        return (x - 0.5).norm(dim=1) - 0.3

    vertices, faces = extract_mesh(sphere, 256)
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    assert mesh.is_watertight
    assert mesh.volume == pytest.approx(4 / 3 * np.pi * 0.3**3, rel=2e-3)  # positive: outward normals
    radii = np.linalg.norm(vertices - 0.5, axis=1)
    assert np.abs(radii - 0.3).max() < 5e-4
    assert sum(calls) < 0.2 * 256**3  # only cells near the surface were evaluated


def test_shape_mesh_drops_floaters_and_keeps_large_pieces():
    """A big sphere, a second big sphere and a tiny one: the tiny one (under 1 % of the
    largest piece's area) is a floater; min_piece_share=0 keeps it."""
    import torch

    from rbfield.tasks.sdf import shape_mesh

    centres = torch.tensor([[0.3, 0.5, 0.5], [0.72, 0.5, 0.5], [0.5, 0.85, 0.5]])
    radii = torch.tensor([0.15, 0.12, 0.01])

    def spheres(x):
        return ((x[:, None, :] - centres).norm(dim=-1) - radii).min(dim=1).values[:, None]

    cleaned_vertices, cleaned_faces = shape_mesh(spheres, 128)
    all_vertices, all_faces = shape_mesh(spheres, 128, min_piece_share=0.0)
    pieces = trimesh.Trimesh(all_vertices, all_faces, process=False).split(only_watertight=False)
    assert len(pieces) == 3
    cleaned = trimesh.Trimesh(cleaned_vertices, cleaned_faces, process=False)
    assert len(cleaned.split(only_watertight=False)) == 2
    assert cleaned.area == pytest.approx(4 * np.pi * (0.15**2 + 0.12**2), rel=1e-2)
    assert np.linalg.norm(cleaned_vertices - [0.5, 0.85, 0.5], axis=1).min() > 0.05


def test_a_stray_far_vertex_is_named(fandisk, tmp_path):
    vertices = fandisk.vertices.copy()
    vertices[17] = [1e30, 0.0, 0.0]
    path = tmp_path / "stray.obj"
    save_mesh(path, vertices, fandisk.faces)
    with pytest.raises(RbfieldError, match="vertex 17 .* lies far from the rest"):
        load_shape(path)


def test_vertices_on_one_line_are_refused_quickly(tmp_path):
    line = "".join(f"v {t} {2 * t} {3 * t}\n" for t in np.linspace(0.0, 1.0, 30) + 0.1)
    faces = "".join(f"f {i} {i + 1} {i + 2}\n" for i in range(1, 28))
    with pytest.raises(RbfieldError, match="lie on a line or a point"):
        load_shape(_write(tmp_path / "line.obj", line + faces))
