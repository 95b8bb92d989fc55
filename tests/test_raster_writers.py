"""Streaming PNG and tiled pyramidal BigTIFF writers, and regions of an output grid."""

from __future__ import annotations

import numpy as np
import png
import pytest
import tifffile
import torch

from raster_photos import mosaic
from rbfield import build_field
from rbfield.errors import RbfieldError
from rbfield.raster.grid import field_predictor, parse_region, region_coords
from rbfield.raster.store import PixelStore
from rbfield.raster.writers import downsample, pyramid_sizes, quantise, write_png, write_tiled_tiff
from rbfield.signals.image import ImageSignal, image_to_float, pixel_centres, reconstruct, save_png


@pytest.fixture(scope="module")
def render() -> np.ndarray:
    """A float 'render' of a real photo mosaic, with values that round both ways."""
    pixels = image_to_float(mosaic(301, 437))
    return np.clip(pixels + np.random.default_rng(0).normal(0, 0.01, pixels.shape), -0.05, 1.05).astype(np.float32)


def _predictor(pixels: np.ndarray, calls: list | None = None):
    def predict(x, y, w, h):
        if calls is not None:
            calls.append((x, y, w, h))
        return pixels[y : y + h, x : x + w]

    return predict


def _read_png(path) -> np.ndarray:
    width, height, rows, info = png.Reader(filename=str(path)).asDirect()
    return np.vstack([np.asarray(row) for row in rows]).reshape(height, width, info["planes"])


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_png_in_bands_equals_a_whole_write(tmp_path, render, bits, channels):
    pixels = np.dstack([render, render[:, :, 1:2]])[:, :, :channels]
    calls = []
    write_png(tmp_path / "bands.png", _predictor(pixels, calls), 437, 301, channels, bits=bits, band_rows=64)
    save_png(tmp_path / "whole.png", pixels, bits=bits)
    np.testing.assert_array_equal(_read_png(tmp_path / "bands.png"), _read_png(tmp_path / "whole.png"))
    assert len(calls) == 5 and all(h <= 64 for _, _, _, h in calls)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_tiled_bigtiff_reads_back_as_rendered(tmp_path, render, channels):
    pixels = np.dstack([render, render[:, :, 1:2]])[:, :, :channels]
    calls = []
    sizes = write_tiled_tiff(tmp_path / "out.tif", _predictor(pixels, calls), 437, 301, channels, tile=128)
    assert sizes == [(437, 301), (219, 151), (110, 76)] == pyramid_sizes(437, 301, 128)
    assert max(w for _, _, w, _ in calls) <= 128 and max(h for *_, h in calls) <= 128
    expected = quantise(pixels, 8)
    with tifffile.TiffFile(tmp_path / "out.tif") as tiff:
        page = tiff.pages[0]
        assert tiff.is_bigtiff and page.is_tiled and (page.tilewidth, page.tilelength) == (128, 128)
        assert len(page.subifds) == 2
        levels = [level.asarray() for level in tiff.series[0].levels]
    for level in levels:
        np.testing.assert_array_equal(level.reshape(expected.shape), expected)
        expected = downsample(expected)
    np.testing.assert_array_equal(PixelStore.open(tmp_path / "out.tif").array[:, :, 0], quantise(pixels, 8)[:, :, 0])


def test_16bit_tiff_without_compression(tmp_path, render):
    write_tiled_tiff(tmp_path / "deep.tif", _predictor(render), 437, 301, 3, bits=16, compression=None)
    with tifffile.TiffFile(tmp_path / "deep.tif") as tiff:
        assert tiff.pages[0].compression == 1 and tiff.pages[0].dtype == np.uint16
    np.testing.assert_array_equal(PixelStore.open(tmp_path / "deep.tif").array, quantise(render, 16))


def test_downsample_averages_what_is_there():
    block = np.array([[10, 20, 30], [30, 40, 50], [100, 100, 7]], np.uint8)[:, :, None]
    np.testing.assert_array_equal(downsample(block)[:, :, 0], [[25, 40], [100, 7]])


def test_region_of_any_output_size():
    assert parse_region("5,6,7,8", 100, 100) == (5, 6, 7, 8)
    for text in ["1,2,3", "0,0,0,5", "95,0,10,10", "a,b,c,d"]:
        with pytest.raises(RbfieldError, match="region"):
            parse_region(text, 100, 100)
    huge = region_coords(123_456, 78_901, 3, 2, 200_000, 100_000)
    expected = torch.tensor(
        [[(123_456 + j + 0.5) / 200_000, (78_901 + i + 0.5) / 100_000] for i in range(2) for j in range(3)]
    )
    torch.testing.assert_close(huge, expected, rtol=0, atol=1e-7)
    whole = pixel_centres(40, 30).reshape(30, 40, 2)
    assert torch.equal(region_coords(7, 5, 11, 4, 40, 30), whole[5:9, 7:18].reshape(-1, 2))


def test_field_region_render_matches_the_whole_render(tmp_path):
    crop = mosaic(48, 64)
    signal = ImageSignal(image_to_float(crop))
    field = build_field("neurbf", signal.spec(), "16k")
    field.initialize(signal)
    field.eval()
    whole = reconstruct(field, 96, 72).clamp(0, 1).numpy()
    predict = field_predictor(field, 96, 72)
    np.testing.assert_allclose(predict(10, 20, 30, 15), whole[20:35, 10:40], atol=1e-6)
    write_png(tmp_path / "region.png", lambda x, y, w, h: predict(10 + x, 20 + y, w, h), 30, 15, 3)
    np.testing.assert_array_equal(_read_png(tmp_path / "region.png"), quantise(whole[20:35, 10:40], 8))
