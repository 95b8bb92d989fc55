"""The command line: fit -> render -> eval round trip, compare, and bad input."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
import torch

from rbfield.cli import main
from rbfield.metrics import psnr
from rbfield.runs import staging_path
from rbfield.signals.image import load_image


@pytest.fixture(scope="module")
def photo_path(tmp_path_factory, chelsea_crop_uint8):
    path = tmp_path_factory.mktemp("photo") / "chelsea.png"
    iio.imwrite(path, chelsea_crop_uint8)
    return path


@pytest.fixture(scope="module")
def fitted_run(tmp_path_factory, photo_path):
    out = tmp_path_factory.mktemp("run") / "fit"
    code = main(["fit", "image", str(photo_path), "--params", "12k", "--steps", "120", "--out", str(out), "--quiet"])
    assert code == 0
    return out


def test_fit_writes_a_complete_run_folder(fitted_run):
    for name in (
        "metrics.json",
        "config.json",
        "reconstruction.png",
        "comparison.png",
        "psnr_curve.png",
        "field.safetensors",
        "field.json",
        "field_fp16.safetensors",
        "checkpoint.pt",
    ):
        assert (fitted_run / name).stat().st_size > 0, name
    metrics = json.loads((fitted_run / "metrics.json").read_text())
    for key in (
        "psnr",
        "ssim",
        "trainable_params",
        "total_params",
        "steps",
        "seconds",
        "field",
        "width",
        "height",
        "compact_bytes",
        "bits_per_pixel",
    ):
        assert key in metrics, key
    assert metrics["steps"] == 120 and metrics["field"] == "neurbf"
    assert metrics["width"] == 48 and metrics["height"] == 48
    assert metrics["trainable_params"] <= 12_000 < metrics["total_params"]
    assert metrics["psnr"] > 30.0
    assert metrics["bits_per_pixel"] == pytest.approx(metrics["compact_bytes"] * 8 / 48**2)
    assert abs(metrics["psnr_fp16"] - metrics["psnr"]) < 0.5


def test_render_then_eval_round_trip(tmp_path, fitted_run, photo_path, capsys):
    metrics = json.loads((fitted_run / "metrics.json").read_text())
    rendered = tmp_path / "same.png"
    assert main(["render", "image", str(fitted_run), "--size", "48x48", "--out", str(rendered)]) == 0
    # The 8-bit PNG differs from the float reconstruction by quantisation only.
    assert psnr(torch.from_numpy(load_image(rendered)), torch.from_numpy(load_image(photo_path))) == pytest.approx(
        metrics["psnr"], abs=0.3
    )
    capsys.readouterr()
    assert main(["eval", "image", str(fitted_run / "field.safetensors"), str(photo_path)]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["psnr"] == pytest.approx(metrics["psnr"], abs=1e-9)
    assert evaluated["ssim"] == pytest.approx(metrics["ssim"], abs=1e-9)

    large = tmp_path / "large.png"
    assert main(["render", "image", str(fitted_run), "--size", "150x100", "--out", str(large), "--bits", "16"]) == 0
    assert load_image(large).shape == (100, 150, 3)
    assert large.read_bytes()[24] == 16  # IHDR bit depth


def test_render_region_is_the_crop_of_the_full_render(tmp_path, fitted_run):
    full, part = tmp_path / "full.png", tmp_path / "part.png"
    assert main(["render", "image", str(fitted_run), "--size", "150x100", "--out", str(full)]) == 0
    arguments = ["render", "image", str(fitted_run), "--size", "150x100", "--region", "40,30,64,50"]
    assert main([*arguments, "--out", str(part)]) == 0
    np.testing.assert_array_equal(iio.imread(part), iio.imread(full)[30:80, 40:104])


def test_render_size_defaults_to_the_fitted_image(tmp_path, fitted_run, capsys):
    given, default = tmp_path / "given.png", tmp_path / "default.png"
    region = ["render", "image", str(fitted_run), "--region", "8,4,20,30"]
    assert main([*region, "--size", "48x48", "--out", str(given)]) == 0
    assert main([*region, "--out", str(default)]) == 0
    np.testing.assert_array_equal(iio.imread(default), iio.imread(given))
    assert "region x=8, y=4 of 48x48" in capsys.readouterr().out


def test_render_tiff_is_tiled_pyramidal_and_equals_the_png(tmp_path, fitted_run):
    png, tiff = tmp_path / "full.png", tmp_path / "full.tif"
    for out in (png, tiff):
        assert main(["render", "image", str(fitted_run), "--size", "600x300", "--out", str(out), "--bits", "16"]) == 0
    with tifffile.TiffFile(tiff) as opened:
        page = opened.pages[0]
        assert page.is_tiled and page.dtype == np.uint16 and opened.is_bigtiff
        np.testing.assert_array_equal(page.asarray().astype(np.float32) / 65535, load_image(png))
        assert [level.shape[:2] for level in page.pages] == [(150, 300), (75, 150)]


@pytest.mark.parametrize(
    ("size", "region", "message"),
    [
        ("100000000x10", None, "sides above 16,777,216 pixels"),
        ("3000000x3000000", None, "is 9000.0 gigapixels, over the 4.3 one command writes"),
        ("100x100", "90,0,20,10", "region '90,0,20,10' is not inside the 100x100 output"),
    ],
)
def test_render_refuses_absurd_outputs_at_once(tmp_path, fitted_run, capsys, size, region, message):
    arguments = ["render", "image", str(fitted_run), "--size", size, "--out", str(tmp_path / "x.png")]
    assert main(arguments + (["--region", region] if region else [])) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and re.search(message, err)
    assert list(tmp_path.iterdir()) == []


def test_compare_runs_every_field_at_one_budget(tmp_path, photo_path):
    out = tmp_path / "cmp"
    code = main(
        [
            "compare",
            "image",
            str(photo_path),
            "--fields",
            "neurbf,instant-ngp",
            "--params",
            "12k",
            "--steps",
            "20",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    summary = json.loads((out / "compare.json").read_text())
    assert [run["field"] for run in summary["runs"]] == ["neurbf", "instant-ngp"]
    assert all(run["trainable_params"] <= 12_000 for run in summary["runs"])
    assert (out / "compare.png").stat().st_size > 0 and "| neurbf |" in (out / "compare.md").read_text()


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["fit", "image", "{missing}"], "no such file"),
        (["fit", "image", "{text}"], "not a readable image"),
        (["fit", "image", "{photo}", "--field", "nerf-magic"], "unknown field 'nerf-magic'"),
        (["fit", "image", "{photo}", "--params", "500"], "too small for field 'neurbf'"),
        (["fit", "image", "{photo}", "--params", "lots"], "cannot read parameter budget"),
        (["render", "image", "{missing}", "--size", "4x4", "--out", "{out}/x.png"], "no such file"),
        (["render", "image", "{text}", "--size", "4x4", "--out", "{out}/x.png"], "not an rbfield field file"),
    ],
)
def test_bad_input_one_line_no_traceback_nothing_lost(tmp_path, photo_path, capsys, arguments, message):
    out = tmp_path / "out"
    out.mkdir()
    (out / "metrics.json").write_text('{"keep": true}')
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    paths = {"missing": tmp_path / "nope.png", "text": text, "photo": photo_path, "out": out}
    argv = [a.format(**paths) for a in arguments]
    if argv[0] == "fit":
        argv += ["--out", str(out), "--steps", "5", "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert (out / "metrics.json").read_text() == '{"keep": true}'
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json"]


def test_console_script_error_has_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "rbfield.cli", "fit", "image", str(tmp_path / "missing.png")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stderr.strip().startswith("error:")


def test_demo_runs_on_the_bundled_photo(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--steps", "3", "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["width"] == metrics["height"] == 256 and metrics["steps"] == 3
    assert f"results in {out}/" in capsys.readouterr().out


def test_sigterm_saves_a_checkpoint_that_resumes(tmp_path, photo_path):
    import signal
    import time

    out = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "rbfield.cli",
        "fit",
        "image",
        str(photo_path),
        "--params",
        "12k",
        "--out",
        str(out),
        "--quiet",
    ]
    process = subprocess.Popen(
        command + ["--steps", "1000000", "--checkpoint-every", "5"], stderr=subprocess.PIPE, text=True
    )
    checkpoint = staging_path(out) / "checkpoint.pt"  # an unfinished run lives in its staging folder
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # let it train a little more
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "--resume" in err and "Traceback" not in err
    state = torch.load(checkpoint, weights_only=True)
    assert state["step"] > 0
    # Resuming with a smaller step target finishes at once and writes the results.
    resumed = subprocess.run(
        command + ["--steps", str(state["step"]), "--resume"], capture_output=True, text=True, timeout=120
    )
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((out / "metrics.json").read_text())["steps"] == state["step"]


def test_every_command_that_runs_work_takes_threads(monkeypatch, tmp_path):
    from rbfield.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    leaves = []
    for command in commands.values():
        kinds = [a for a in command._actions if isinstance(a, argparse._SubParsersAction)]
        leaves += list(kinds[0].choices.values()) if kinds else [command]
    assert len(leaves) >= 12 and all("--threads" in leaf._option_string_actions for leaf in leaves)
    seen = []
    monkeypatch.setattr("rbfield.ops.set_threads", seen.append)
    main(
        [
            "render",
            "image",
            str(tmp_path / "missing"),
            "--size",
            "8x8",
            "--out",
            str(tmp_path / "x.png"),
            "--threads",
            "1",
        ]
    )
    assert seen == [1]
