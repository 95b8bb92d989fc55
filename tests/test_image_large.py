"""Images of any size through the image signal and the image commands: a PixelStore
inside ImageSignal, subset progress, streamed outputs, bounded memory, clear refusals."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
import torch

from raster_photos import bigtiff_header, mosaic
from rbfield import ImageSignal, TrainConfig, build_field, fit
from rbfield.cli import main
from rbfield.metrics import psnr
from rbfield.raster.grid import field_predictor
from rbfield.signals.image import image_to_float, load_image, reconstruct
from rbfield.tasks.image import load_image_field

TESTS = Path(__file__).parent


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return mosaic(270, 390)


@pytest.fixture(scope="module")
def tiled_photo(tmp_path_factory, photo) -> Path:
    """The mosaic as a tiled, Deflate-compressed BigTIFF."""
    path = tmp_path_factory.mktemp("tiff") / "mosaic.tif"
    tifffile.imwrite(path, photo, tile=(128, 128), compression="zlib", bigtiff=True, photometric="rgb")
    return path


def test_signal_from_a_file_holds_only_the_stored_pixels(tiled_photo, photo):
    """Nothing per pixel besides the uint8 store: no float copy, no coordinate or target table."""
    signal = ImageSignal.from_path(tiled_photo, batch_size=4096)
    assert signal.store.array.dtype == np.uint8 and np.array_equal(signal.store.array, photo)
    per_pixel = [
        name
        for name, value in vars(signal).items()
        if isinstance(value, (np.ndarray, torch.Tensor)) and value.size >= signal.n_pixels
    ]
    assert per_pixel == []
    coords, targets = signal.batch(0, torch.Generator().manual_seed(0))
    assert coords.shape == (4096, 2) and targets.shape == (4096, 3)
    rows, cols = (coords[:, 1] * 270).long(), (coords[:, 0] * 390).long()
    np.testing.assert_array_equal(targets.numpy(), photo[rows, cols].astype(np.float32) / 255)


def test_float_input_is_kept_exactly(photo):
    pixels = image_to_float(photo) * 0.999
    signal = ImageSignal(pixels, batch_size=1000)
    assert signal.store.array is pixels
    coords, targets = signal.batch(3, torch.Generator().manual_seed(3))
    rows, cols = (coords[:, 1] * 270).long(), (coords[:, 0] * 390).long()
    np.testing.assert_array_equal(targets.numpy(), pixels[rows, cols])


def test_small_images_train_on_every_pixel_and_evaluate_the_whole_image(photo):
    crop = image_to_float(photo[:40, :50])
    signal = ImageSignal(crop)
    coords, targets = signal.batch(0, torch.Generator())
    assert coords.shape == (2000, 2) and torch.equal(targets, torch.from_numpy(crop.reshape(-1, 3)))
    field = build_field("instant-ngp", signal.spec(), "10k")
    quick = signal.evaluate(field)
    assert list(quick) == ["psnr"] and quick["psnr"] == pytest.approx(signal.final_metrics(field)["psnr"], abs=1e-9)


def test_large_images_evaluate_a_fixed_subset(photo):
    """Above 2^16 pixels the history's key says so, and the subset PSNR tracks the whole image's."""
    signal = ImageSignal(photo, batch_size=4096)
    field = build_field("neurbf", signal.spec(), "20k")
    field.initialize(signal)
    result = fit(field, signal, TrainConfig(steps=20, eval_every=10, progress=False))
    assert [sorted(entry) for entry in result.history] == [["psnr_subset", "seconds", "step"]] * 2
    whole = psnr(reconstruct(field, 390, 270).clamp(0, 1), torch.from_numpy(image_to_float(photo)))
    assert result.history[-1]["psnr_subset"] == pytest.approx(whole, abs=0.2)
    assert signal.evaluate(field) == {"psnr_subset": result.history[-1]["psnr_subset"]}


def test_fit_a_tiled_bigtiff_through_the_cli(tmp_path, tiled_photo, photo, monkeypatch):
    """End to end on a BigTIFF; thresholds lowered so the TIFF reconstruction and the overview are written."""
    monkeypatch.setattr("rbfield.tasks.image.TIFF_ABOVE_PIXELS", 100_000)
    monkeypatch.setattr("rbfield.tasks.image.OVERVIEW_SIDE", 256)
    out = tmp_path / "run"
    arguments = [
        "fit",
        "image",
        str(tiled_photo),
        "--params",
        "12k",
        "--steps",
        "30",
        "--eval-every",
        "15",
        "--batch",
        "4096",
    ]
    assert main([*arguments, "--max-memory", "64M", "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["width"], metrics["height"], metrics["pixels"]) == (390, 270, 390 * 270)
    for key in ("setup_seconds", "load_seconds", "rbf_init_seconds", "train_seconds", "eval_seconds"):
        assert 0 <= metrics[key] < 60, key
    assert metrics["setup_seconds"] == pytest.approx(metrics["load_seconds"] + metrics["rbf_init_seconds"], abs=0.02)
    assert 100e6 < metrics["peak_rss_bytes"] < 8e9
    assert [entry["step"] for entry in metrics["history"]] == [15, 30] and "psnr_subset" in metrics["history"][0]
    assert "psnr_fp16_subset" in metrics and abs(metrics["psnr_fp16_subset"] - metrics["psnr"]) < 1.0
    assert metrics["reconstruction"] == "reconstruction.tif" and not (out / "reconstruction.png").exists()
    assert not list(out.glob(".render-*"))
    # The written reconstruction is the field's 8-bit render, and its PSNR is the reported one up to quantisation.
    field = load_image_field(out)
    expected = np.round(field_predictor(field, 390, 270)(0, 0, 390, 270) * 255).astype(np.uint8)
    with tifffile.TiffFile(out / "reconstruction.tif") as tiff:
        np.testing.assert_array_equal(tiff.pages[0].asarray(), expected)
        assert len(tiff.pages[0].subifds) == 1
    reconstruction = torch.from_numpy(expected.astype(np.float32) / 255)
    assert psnr(reconstruction, torch.from_numpy(image_to_float(photo))) == pytest.approx(metrics["psnr"], abs=0.1)
    assert iio.imread(out / "comparison.png").shape[0] > 500  # overview plus crops


def test_reading_and_fitting_a_6_megapixel_bigtiff_stays_in_bounded_memory(tmp_path):
    """Peak RSS measured in a fresh process (ru_maxrss), above what a warm-up fit at the same batch
    size left: under 250 MB for a 3000 x 2000 image whose pixels take 18 MB. Before ImageSignal used
    a PixelStore, this grew by 1.8 GB (float copy, coordinate table, k-means over every pixel)."""
    path = tmp_path / "mosaic.tif"
    tifffile.imwrite(path, mosaic(2000, 3000), tile=(256, 256), compression="zlib", bigtiff=True, photometric="rgb")
    script = f"""
import resource
import numpy as np
import torch
from rbfield import ImageSignal, TrainConfig, build_field, fit

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

def fit_a_little(signal):
    field = build_field("neurbf", signal.spec(), "20k")
    field.initialize(signal)
    fit(field, signal, TrainConfig(steps=3, eval_every=0, progress=False))

torch.set_num_threads(1)
fit_a_little(ImageSignal(np.random.default_rng(0).random((256, 256, 3), np.float32), batch_size=2**16))
before = peak()
fit_a_little(ImageSignal.from_path({str(path)!r}, batch_size=2**16))
print(peak() - before)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert int(result.stdout.split()[-1]) < 250e6


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    return err


def test_absurd_bigtiff_is_refused_with_one_line(tmp_path, capsys):
    path = tmp_path / "huge.tif"
    path.write_bytes(bigtiff_header(10**6, 10**6))
    assert main(["fit", "image", str(path), "--steps", "1", "--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert re.search(r"huge.tif: 1000000 x 1000000 x 3 x 1 bytes = 3000.00 GB needed", _error_line(capsys))
    assert not (tmp_path / "run").exists()


def test_truncated_tile_is_refused_with_one_line(tmp_path, photo, capsys):
    path = tmp_path / "cut.tif"
    tifffile.imwrite(path, photo, tile=(128, 128), compression="zlib", bigtiff=True, photometric="rgb")
    with tifffile.TiffFile(path) as tiff:
        end = int(tiff.pages[0].dataoffsets[4]) + int(tiff.pages[0].databytecounts[4]) // 2
    path.write_bytes(path.read_bytes()[:end])
    assert main(["eval", "image", str(tmp_path / "no-run"), str(path)]) == 2
    assert re.search(r"cut.tif: tile 4 .* is truncated", _error_line(capsys))


def test_memory_cap_is_applied_before_reading(tiled_photo, tmp_path, capsys):
    assert main(["fit", "image", str(tiled_photo), "--max-memory", "100K", "--out", str(tmp_path / "r")]) == 2
    assert "capped at" in _error_line(capsys)
    assert main(["fit", "image", str(tiled_photo), "--max-memory", "lots", "--out", str(tmp_path / "r")]) == 2
    assert "cannot read memory size 'lots'" in _error_line(capsys)


def test_time_budget_progress_bar_counts_down_seconds(photo, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # a terminal gets the bar; a log gets lines
    signal = ImageSignal(image_to_float(photo[:32, :32]))
    field = build_field("instant-ngp", signal.spec(), "10k")
    fit(field, signal, TrainConfig(steps=None, time_budget=1.0, progress=True))
    assert re.search(r"/1 s \[.*<.*step=\d+", capsys.readouterr().err)


def test_rendered_reconstruction_png_matches_the_field(tmp_path, photo):
    """A PNG reconstruction written from the recorded render equals a direct 8-bit render of the field."""
    crop = photo[:60, :70]
    fit_arguments = ["fit", "image", _png(tmp_path, crop), "--params", "12k", "--steps", "5", "--quiet"]
    assert main([*fit_arguments, "--out", str(tmp_path / "r")]) == 0
    assert main(["render", "image", str(tmp_path / "r"), "--size", "70x60", "--out", str(tmp_path / "again.png")]) == 0
    np.testing.assert_array_equal(load_image(tmp_path / "r" / "reconstruction.png"), load_image(tmp_path / "again.png"))


def _png(folder: Path, pixels: np.ndarray) -> str:
    iio.imwrite(folder / "photo.png", pixels)
    return str(folder / "photo.png")
