"""Reading images: formats, bit depths, channel layouts, and bad files."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
from skimage import data

from rbfield.errors import RbfieldError
from rbfield.signals.image import image_to_float, load_image


@pytest.fixture
def photo():
    return data.coffee()[:40, :50]


def test_png_jpeg_tiff_8_and_16_bit(tmp_path, photo):
    iio.imwrite(tmp_path / "rgb.png", photo)
    np.testing.assert_array_equal(load_image(tmp_path / "rgb.png"), photo.astype(np.float32) / 255)

    grey16 = photo[:, :, 0].astype(np.uint16) * 257
    iio.imwrite(tmp_path / "grey16.png", grey16)
    loaded = load_image(tmp_path / "grey16.png")
    assert loaded.shape == (40, 50, 1)
    np.testing.assert_allclose(loaded[:, :, 0], grey16 / 65535, atol=1e-7)

    rgb16 = photo.astype(np.uint16) * 257 + 3
    iio.imwrite(tmp_path / "rgb16.tif", rgb16)
    np.testing.assert_allclose(load_image(tmp_path / "rgb16.tif"), rgb16 / 65535, atol=1e-7)

    iio.imwrite(tmp_path / "photo.jpg", photo, quality=95)
    jpeg = load_image(tmp_path / "photo.jpg")
    assert jpeg.shape == (40, 50, 3) and np.abs(jpeg - photo / 255).mean() < 0.02


def test_rgba_keeps_alpha(tmp_path, photo):
    rgba = np.dstack([photo, np.full(photo.shape[:2], 128, np.uint8)])
    iio.imwrite(tmp_path / "rgba.png", rgba)
    loaded = load_image(tmp_path / "rgba.png")
    assert loaded.shape == (40, 50, 4)
    assert loaded[0, 0, 3] == pytest.approx(128 / 255)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_text("this is not a picture"), "not a readable image"),
        (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40), "not a readable image"),
    ],
    ids=["missing", "empty", "text", "truncated-png"],
)
def test_bad_files_give_clear_errors(tmp_path, make, message):
    path = tmp_path / "image.png"
    make(path)
    with pytest.raises(RbfieldError, match=message):
        load_image(path)


def test_zero_size_and_nan_images():
    with pytest.raises(RbfieldError, match="size 0"):
        image_to_float(np.zeros((0, 5, 3), np.uint8))
    bad = np.zeros((4, 4, 3), np.float32)
    bad[1, 1, 1] = np.nan
    with pytest.raises(RbfieldError, match="NaN"):
        image_to_float(bad)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("bits", [8, 16])
def test_png_writer_round_trips(tmp_path, channels, bits):
    from rbfield.signals.image import save_png

    rng = np.random.default_rng(channels)
    levels = 2**bits - 1
    values = rng.integers(0, levels + 1, size=(7, 9, channels))
    save_png(tmp_path / "out.png", values / levels, bits=bits)
    np.testing.assert_allclose(load_image(tmp_path / "out.png"), values / levels, atol=1e-6)
