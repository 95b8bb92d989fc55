"""A short radiance fit on bunny_coffee that must reach a test PSNR; the nerf CLI end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rbfield.cli import main
from rbfield.fields import build_field
from rbfield.io import load_field
from rbfield.signals.radiance import scene_spec
from shared_data import SHARED_DATA, requires

SCENE = SHARED_DATA / "nerf" / "bunny_coffee"
pytestmark = requires("nerf", "bunny_coffee")


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """tensorf, 150k params, 200 steps of 1024 rays on 50x50 images (downscale 4)."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("nerf") / "run"
    code = main(
        [
            "fit",
            "nerf",
            str(SCENE),
            "--field",
            "tensorf",
            "--params",
            "150k",
            "--steps",
            "200",
            "--batch",
            "1024",
            "--downscale",
            "4",
            "--eval-every",
            "150",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    return out


def test_short_fit_reaches_test_psnr(fitted):
    metrics = json.loads((fitted / "metrics.json").read_text())
    assert metrics["test_views"] == 50 and len(metrics["per_view"]) == 50
    assert metrics["psnr"] > 24.0, metrics["psnr"]
    assert 0.5 < metrics["ssim"] <= 1.0
    assert metrics["trainable_params"] <= 150_000 and metrics["total_params"] >= metrics["trainable_params"]
    assert metrics["steps"] == 200 and metrics["seconds"] > 0
    assert isinstance(metrics["lpips"], float) or metrics["lpips"].startswith("skipped: weights not available offline")
    assert metrics["depth_mae"] is None  # the reference depth maps are full size, these renders 50x50
    assert (fitted / "renders" / "r_0.png").exists() and (fitted / "renders" / "r_0_depth.npy").exists()
    assert Path(metrics["video"]).stat().st_size > 1000


def test_saved_field_renders_the_same(fitted, tmp_path, monkeypatch):
    import rbfield.tasks.nerf

    field = load_field(fitted)
    assert bool(field.occupancy.occupied.any())
    # LPIPS as if its package and weights were present (test_lpips_optional covers the real loading)
    monkeypatch.setattr(rbfield.tasks.nerf, "load_lpips", lambda: lambda image, target: 0.25)
    assert main(["render", "nerf", str(fitted), "--out", str(tmp_path / "test")]) == 0
    rendered = json.loads((tmp_path / "test" / "metrics.json").read_text())
    original = json.loads((fitted / "metrics.json").read_text())
    assert abs(rendered["psnr"] - original["psnr"]) < 1e-4
    assert rendered["lpips"] == 0.25 and all(view["lpips"] == 0.25 for view in rendered["per_view"])
    assert rendered["metric_settings"]["lpips"].startswith("LPIPS AlexNet")
    assert main(["render", "nerf", str(fitted), "--orbit", "4", "--out", str(tmp_path / "orbit")]) == 0
    assert len(list((tmp_path / "orbit").glob("orbit_*[0-9].png"))) == 4


def test_export_mesh_with_colours(fitted, tmp_path):
    out = tmp_path / "mesh.ply"
    assert main(["export", "mesh", str(fitted), "--res", "64", "--level", "5", "--out", str(out)]) == 0
    data = out.read_bytes()
    header = data[: data.index(b"end_header")].decode()
    vertices = int(header.split("element vertex ")[1].split()[0])
    assert vertices > 100 and "property uchar red" in header


@pytest.mark.parametrize("preset", ["instant-ngp", "tensorf", "neurbf"])
def test_presets_fit_their_budget(preset):
    for budget in (200_000, 1_000_000):
        field = build_field(preset, scene_spec(), budget)
        counts = field.param_counts()
        assert 0.7 * budget < counts["trainable"] <= budget
        sigma, rgb = field(torch.rand(10, 3) * 2 - 1, torch.nn.functional.normalize(torch.randn(10, 3), dim=-1))
        assert sigma.shape == (10,) and rgb.shape == (10, 3) and torch.all(sigma >= 0)


def test_bad_input_is_one_line(tmp_path, capsys):
    assert main(["fit", "nerf", str(tmp_path / "missing"), "--steps", "1"]) == 2
    assert "no such scene folder" in capsys.readouterr().err
    assert main(["render", "nerf", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error:") and len(error.strip().splitlines()) == 1


def test_metrics_record_provenance_and_the_real_device(fitted):
    from rbfield import __version__

    metrics = json.loads((fitted / "metrics.json").read_text())
    assert metrics["device"] == "cpu" and metrics["rbfield_version"] == __version__
    assert metrics["threads"] >= 1 and metrics["command"]
    assert list(metrics["input_sha256"]) == [str(SCENE)] and len(metrics["input_sha256"][str(SCENE)]) == 64


def test_eval_scores_the_test_split_without_writing(fitted, capsys):
    before = sorted(p.name for p in fitted.rglob("*"))
    capsys.readouterr()
    assert main(["eval", "nerf", str(fitted), "--device", "cpu"]) == 0
    scores = json.loads(capsys.readouterr().out)
    stored = json.loads((fitted / "metrics.json").read_text())
    assert scores["split"] == "test" and scores["views"] == 50
    assert scores["psnr"] == pytest.approx(stored["psnr"], abs=1e-6)
    assert sorted(p.name for p in fitted.rglob("*")) == before


def test_export_glb_keeps_vertex_colours(fitted, tmp_path):
    import trimesh

    out = tmp_path / "scene.glb"
    assert main(["export", "mesh", str(fitted), "--res", "48", "--level", "5", "--out", str(out)]) == 0
    loaded = trimesh.load(out, process=False)
    mesh = next(iter(loaded.geometry.values())) if isinstance(loaded, trimesh.Scene) else loaded
    assert len(mesh.vertices) > 100 and mesh.visual.kind == "vertex"
    colours = mesh.visual.vertex_colors[:, :3]
    assert len(np.unique(colours, axis=0)) > 10  # real colours, not one default


def test_refit_needs_overwrite_and_a_refused_resume_keeps_the_run(fitted, tmp_path, capsys):
    before = {p.name: p.read_bytes() for p in fitted.iterdir() if p.is_file()}
    assert main(["fit", "nerf", str(SCENE), "--out", str(fitted), "--steps", "1", "--downscale", "4"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    resumed = ["fit", "nerf", str(SCENE), "--out", str(fitted), "--resume", "--field", "neurbf", "--params", "150k"]
    assert main(resumed + ["--steps", "300", "--downscale", "4", "--quiet"]) == 2
    assert "different field" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in fitted.iterdir() if p.is_file()} == before
