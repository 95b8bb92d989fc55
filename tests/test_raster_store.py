"""PixelStore: compact reading of PNG, JPEG and tiled/stripped (Big)TIFF, and its refusals."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
import torch

from raster_photos import bigtiff_header, mosaic
from rbfield.errors import RbfieldError
from rbfield.raster.store import PixelStore
from rbfield.signals.image import load_image


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return mosaic(300, 530)


@pytest.mark.parametrize(
    "layout",
    [
        {"tile": (128, 128), "compression": "zlib", "bigtiff": True},
        {"tile": (64, 64), "compression": "zlib", "predictor": True, "bigtiff": True},
        {"rowsperstrip": 7},
        {"tile": (64, 64), "planarconfig": "separate"},
    ],
    ids=["bigtiff-tiled-zlib", "tiled-predictor", "strips", "planar-separate"],
)
def test_tiff_layouts_read_exactly(tmp_path, photo, layout):
    data = np.moveaxis(photo, 2, 0) if layout.get("planarconfig") == "separate" else photo
    tifffile.imwrite(tmp_path / "photo.tif", data, photometric="rgb", **layout)
    store = PixelStore.open(tmp_path / "photo.tif")
    assert store.array.dtype == np.uint8 and store.scale == 255
    np.testing.assert_array_equal(store.array, photo)


def test_16bit_and_grey_tiff(tmp_path, photo):
    deep = photo.astype(np.uint16) * 257 + 5
    tifffile.imwrite(tmp_path / "deep.tif", deep, tile=(64, 64), photometric="rgb")
    store = PixelStore.open(tmp_path / "deep.tif")
    assert store.scale == 65535 and store.nbytes == deep.nbytes
    np.testing.assert_array_equal(store.array, deep)
    tifffile.imwrite(tmp_path / "grey.tif", photo[:, :, 1], tile=(32, 32))
    assert PixelStore.open(tmp_path / "grey.tif").array.shape == (300, 530, 1)


def test_png_and_jpeg_match_the_float_loader(tmp_path, photo):
    """Float values of the store equal load_image's for 8-bit, 16-bit grey, 16-bit RGB(A) PNG and JPEG."""
    files = {
        "rgb.png": photo,
        "grey16.png": photo[:, :, 0].astype(np.uint16) * 257,
        "photo.jpg": photo,
    }
    for name, pixels in files.items():
        iio.imwrite(tmp_path / name, pixels)
    rgba16 = np.dstack([photo, photo[:, :, :1]]).astype(np.uint16) * 257 + 1
    from rbfield.signals.image import encode_png

    (tmp_path / "rgba16.png").write_bytes(encode_png(rgba16))
    for name in [*files, "rgba16.png"]:
        store = PixelStore.open(tmp_path / name)
        expected = load_image(tmp_path / name)
        np.testing.assert_array_equal(store.read_float(0, 0, store.width, store.height), expected)
    assert PixelStore.open(tmp_path / "rgba16.png").array.dtype == np.uint16


def test_region_and_gather(photo):
    store = PixelStore(photo)
    np.testing.assert_array_equal(store.read_region(10, 20, 30, 5), photo[20:25, 10:40])
    rows, cols = torch.tensor([0, 299, 17]), torch.tensor([0, 529, 400])
    values = store.gather(rows, cols)
    assert values.dtype == torch.float32 and values.shape == (3, 3)
    np.testing.assert_array_equal(values.numpy(), photo[[0, 299, 17], [0, 529, 400]].astype(np.float32) / 255)
    with pytest.raises(RbfieldError, match="not inside"):
        store.read_region(520, 0, 20, 5)


def test_absurd_declared_size_is_refused_from_the_header(tmp_path):
    path = tmp_path / "huge.tif"
    path.write_bytes(bigtiff_header(10**6, 10**6))
    with pytest.raises(RbfieldError, match=r"1000000 x 1000000 x 3 x 1 bytes = 3000.00 GB needed, .* available"):
        PixelStore.open(path)


def test_cap_is_applied_before_reading(tmp_path, photo):
    iio.imwrite(tmp_path / "photo.png", photo)
    with pytest.raises(RbfieldError, match=r"530 x 300 x 3 x 1 bytes = 0.5 MB .* needed"):
        PixelStore.open(tmp_path / "photo.png", max_bytes=100_000)
    assert PixelStore.open(tmp_path / "photo.png", max_bytes=10**7).nbytes == photo.nbytes


@pytest.fixture
def tiled(tmp_path, photo):
    path = tmp_path / "tiled.tif"
    tifffile.imwrite(path, photo, tile=(128, 128), compression="zlib", bigtiff=True, photometric="rgb")
    with tifffile.TiffFile(path) as tiff:
        page = tiff.pages[0]
        return path, int(page.dataoffsets[5]), int(page.databytecounts[5])


def test_corrupt_tile_is_named(tiled):
    path, offset, count = tiled
    data = bytearray(path.read_bytes())
    data[offset : offset + count] = bytes(count)
    path.write_bytes(bytes(data))
    with pytest.raises(RbfieldError, match=r"tiled.tif: tile 5 \(row 1, column 0, x=0, y=128\) is corrupt"):
        PixelStore.open(path)


def test_truncated_file_is_named(tiled):
    path, offset, count = tiled
    path.write_bytes(path.read_bytes()[: offset + count // 2])
    with pytest.raises(RbfieldError, match=rf"tile 5 .* is truncated \({count // 2} of {count} bytes\)"):
        PixelStore.open(path)


def test_bad_inputs(tmp_path, photo):
    with pytest.raises(RbfieldError, match="no such file"):
        PixelStore.open(tmp_path / "missing.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(RbfieldError, match="empty"):
        PixelStore.open(tmp_path / "empty.png")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(RbfieldError, match="not a readable image"):
        PixelStore.open(tmp_path / "text.png")
    tifffile.imwrite(tmp_path / "float.tif", photo.astype(np.float32), photometric="rgb")
    with pytest.raises(RbfieldError, match="float32.*expected 8- or 16-bit"):
        PixelStore.open(tmp_path / "float.tif")
    with pytest.raises(RbfieldError, match="float64; a PixelStore holds 8- or 16-bit images or float32"):
        PixelStore(photo.astype(np.float64))


def test_float32_pixels_are_kept_and_handed_out_unchanged(photo):
    """A caller's float32 image is held without a copy and its values come back exactly, not quantised."""
    pixels = (photo.astype(np.float32) + 0.25) / 256
    store = PixelStore(pixels)
    assert store.array is pixels and store.scale == 1
    np.testing.assert_array_equal(store.read_float(3, 4, 50, 20), pixels[4:24, 3:53])
    values = store.gather(torch.tensor([0, 299]), torch.tensor([7, 529]))
    np.testing.assert_array_equal(values.numpy(), pixels[[0, 299], [7, 529]])
