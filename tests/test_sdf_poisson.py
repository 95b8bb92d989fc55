"""`rbfield compare sdf --baseline poisson`: screened Poisson's row, run folder and mesh.

Skipped when open3d does not import (docs/testing.md); the refusals run everywhere.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from rbfield.cli import main
from rbfield.geometry.shapes_io import load_shape
from rbfield.tasks.sdf_poisson import fit_poisson, trim_for_surface
from shared_data import shared_file
from test_poisson_baseline import needs_open3d

FAST = ["--steps", "20", "--res", "64", "--metric-samples", "20000", "--params", "20k", "--quiet"]


@needs_open3d
def test_compare_adds_poissons_row_and_mesh(tmp_path, capsys):
    kitten = shared_file("meshes", "kitten.xyz")
    out = tmp_path / "cmp"
    code = main(
        ["compare", "sdf", kitten, "--fields", "instant-ngp", "--baseline", "poisson", "--out", str(out), *FAST]
    )
    assert code == 0
    table = (out / "compare.md").read_text()
    assert "| instant-ngp |" in table and "| poisson |" in table and "| poisson |" in capsys.readouterr().out
    runs = {run["field"]: run for run in json.loads((out / "compare.json").read_text())["runs"]}
    poisson = runs["poisson"]
    assert poisson["trainable_params"] is None and poisson["seconds"] > 0 and poisson["poisson_depth"] >= 6
    assert poisson["poisson_estimated_normals"] is False
    # The same scores as a field's, against the cloud itself (no IoU). Measured: Chamfer-L1 0.0052, NAE 4.0 deg.
    assert poisson["chamfer_l1"] < 0.007 and poisson["nae_deg"] < 6 and poisson["iou"] is None
    written = load_shape(out / "poisson" / "mesh.ply")
    cloud = load_shape(kitten)
    np.testing.assert_allclose(written.vertices.min(0), cloud.points.min(0), atol=0.02 * np.ptp(cloud.points))
    assert json.loads((out / "poisson" / "metrics.json").read_text())["mesh_faces"] == len(written.faces)


@needs_open3d
def test_a_cloud_without_normals_gets_open3ds(tmp_path):
    points = np.loadtxt(shared_file("meshes", "kitten.xyz"))[:, :3]
    bare = tmp_path / "kitten-points.xyz"
    np.savetxt(bare, points)
    report = fit_poisson(bare, tmp_path / "poisson", metric_samples=2000)
    # Measured NAE 20 deg against the file's normals: some sparse regions are oriented inward.
    assert report["poisson_estimated_normals"] is True and report["nae_deg"] < 30


def test_baseline_is_refused_for_a_dataset_and_without_open3d(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "scans"
    folder.mkdir()
    assert main(["compare", "sdf", str(folder), "--baseline", "poisson", *FAST]) == 2
    assert "--baseline takes one input file" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "open3d", None)
    out = tmp_path / "cmp"
    assert (
        main(["compare", "sdf", shared_file("meshes", "kitten.xyz"), "--baseline", "poisson", "--out", str(out)]) == 2
    )
    assert "rbfield[poisson]" in capsys.readouterr().err and not out.exists()  # refused before any fit


@needs_open3d
def test_poisson_reads_the_cloud_with_the_fields_options(tmp_path):
    """--normals estimate and --outliers keep reach screened Poisson's input too."""
    data = np.loadtxt(shared_file("meshes", "kitten.xyz"))
    low, high = data[:, :3].min(axis=0), data[:, :3].max(axis=0)
    strays = low + np.random.default_rng(5).random((30, 3)) * (high - low)
    path = tmp_path / "kitten-strays.xyz"
    np.savetxt(path, np.vstack([data, np.hstack([strays, data[:30, 3:]])]))
    default = fit_poisson(path, tmp_path / "default", metric_samples=2000)
    kept = fit_poisson(path, tmp_path / "kept", metric_samples=2000, normals="estimate", outliers="keep")
    assert default["poisson_points"] < len(data) + 30 == kept["poisson_points"]
    assert default["poisson_estimated_normals"] is False and kept["poisson_estimated_normals"] is True


def test_poisson_trim_defaults_to_the_open_surface_practice():
    assert trim_for_surface("closed", None) is None and trim_for_surface("open", None) == 0.01
    assert trim_for_surface("open", 0.0) is None and trim_for_surface("closed", 0.05) == 0.05


@needs_open3d
def test_compare_trims_poisson_on_an_open_surface(tmp_path):
    kitten = shared_file("meshes", "kitten.xyz")
    command = ["compare", "sdf", kitten, "--fields", "instant-ngp", "--baseline", "poisson", "--surface", "open"]
    assert main([*command, "--out", str(tmp_path / "open"), *FAST]) == 0
    assert main([*command, "--poisson-trim", "0", "--out", str(tmp_path / "kept"), *FAST]) == 0
    trimmed, kept = (json.loads((tmp_path / run / "poisson" / "metrics.json").read_text()) for run in ("open", "kept"))
    assert trimmed["poisson_trim_quantile"] == 0.01 and kept["poisson_trim_quantile"] is None
    assert trimmed["mesh_faces"] < kept["mesh_faces"]


def test_a_bad_poisson_trim_is_refused_before_any_fit(tmp_path, capsys):
    out = tmp_path / "cmp"
    kitten = shared_file("meshes", "kitten.xyz")
    assert main(["compare", "sdf", kitten, "--baseline", "poisson", "--poisson-trim", "1.5", "--out", str(out)]) == 2
    assert "must be in [0, 1), got 1.5" in capsys.readouterr().err and not out.exists()
