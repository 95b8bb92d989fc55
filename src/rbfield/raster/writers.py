"""Writing renders of any size without holding the image: PNG in bands of rows,
tiled pyramidal BigTIFF tile by tile.

Both take a :data:`~rbfield.raster.grid.Predictor` giving float values in
[0, 1] for a region (e.g. :func:`~rbfield.raster.grid.field_predictor`), and
quantise them as :func:`rbfield.signals.image.save_png` does:
``round(clip(v, 0, 1) * scale)``. Files are written atomically
(:func:`rbfield.io.atomic_write_with`).

The BigTIFF holds the full image as 256 x 256 Deflate-compressed tiles with
horizontal differencing, and downsampled levels (each a 2 x 2 box mean of the
one above, rounded, until a level fits in one tile) as SubIFDs of the first
page: the layout of pyramidal TIFFs that viewers such as QuPath, libvips and
OpenSlide-based tools open. The levels are made from the full-resolution
tiles as they are written; since every level follows the one above it in the
file, the lower levels wait in uncompressed temporary files beside the output
(a third of the full image's size in all), not in memory.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from rbfield.io import atomic_write_with
from rbfield.raster.grid import Predictor
from rbfield.raster.sampling import tiles
from rbfield.raster.spill import SpillArray

#: Tile side of written TIFFs.
TIFF_TILE = 256
#: Pixels per band of rows when writing PNG.
PNG_BAND_PIXELS = 2**20
_SCALES = {8: (255, np.uint8), 16: (65535, np.uint16)}


def quantise(values, bits: int) -> np.ndarray:
    """Float values in [0, 1] (clipped) -> uint8 (bits 8) or uint16 (bits 16), rounded."""
    scale, dtype = _SCALES[bits]
    return np.round(np.clip(np.asarray(values), 0.0, 1.0) * scale).astype(dtype)


def write_png(
    path: str | os.PathLike,
    predict: Predictor,
    width: int,
    height: int,
    channels: int,
    bits: int = 8,
    band_rows: int | None = None,
) -> None:
    """Write a width x height PNG, rendering ``band_rows`` rows at a time.

    Args:
        path: the PNG file.
        predict: (x, y, w, h) -> (h, w, C) float values in [0, 1].
        width, height, channels: the image; channels 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA.
        bits: 8 or 16.
        band_rows: rows rendered per call of ``predict`` (default: about 2^20 pixels).
    """
    import png

    band_rows = band_rows or max(1, PNG_BAND_PIXELS // width)
    big_endian = np.dtype(">u2") if bits == 16 else np.dtype(np.uint8)

    def rows() -> Iterator[bytes]:
        for top in range(0, height, band_rows):
            rows_here = min(band_rows, height - top)
            band = quantise(predict(0, top, width, rows_here), bits).astype(big_endian)
            yield from (row.tobytes() for row in band.reshape(rows_here, width * channels))

    writer = png.Writer(width, height, greyscale=channels <= 2, alpha=channels in (2, 4), bitdepth=bits)

    def write(temporary: Path) -> None:
        with open(temporary, "wb") as file:
            writer.write_packed(file, rows())

    atomic_write_with(path, write)


def recording(predict: Predictor, into: np.ndarray, bits: int = 8) -> Predictor:
    """``predict``, which also stores each region it renders, quantised as the
    writers quantise, into ``into`` ((H, W, C) uint8 for 8 bits, uint16 for
    16; e.g. a :class:`~rbfield.raster.spill.SpillArray`). Scoring a field with it leaves its render behind, to
    be written with ``PixelStore(into).read_float`` as predictor: the files
    are those the field's own predictor would give, without rendering twice.
    """

    def predict_and_keep(x: int, y: int, w: int, h: int):
        values = predict(x, y, w, h)
        into[y : y + h, x : x + w] = quantise(values, bits).reshape(h, w, -1)
        return values

    return predict_and_keep


def pyramid_sizes(width: int, height: int, tile: int = TIFF_TILE) -> list[tuple[int, int]]:
    """(width, height) of each pyramid level: halved (rounding up) until one fits in a tile."""
    sizes = [(width, height)]
    while max(sizes[-1]) > tile:
        w, h = sizes[-1]
        sizes.append((math.ceil(w / 2), math.ceil(h / 2)))
    return sizes


def downsample(block: np.ndarray) -> np.ndarray:
    """2 x 2 box mean of an (h, w, C) integer block, rounded: (ceil(h/2), ceil(w/2), C).

    An odd last row or column is averaged with itself, i.e. over the pixels there are.
    """
    h, w = block.shape[:2]
    padded = np.pad(block, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge").astype(np.float32)
    means = (padded[0::2, 0::2] + padded[1::2, 0::2] + padded[0::2, 1::2] + padded[1::2, 1::2]) / 4
    return np.round(means).astype(block.dtype)


def _tiles_of(array: np.ndarray, tile: int) -> Iterator[np.ndarray]:
    """The tiles of an (h, w, C) array in TIFF order; 2-D for one channel, as tifffile wants grey tiles."""
    for x, y, w, h in tiles(array.shape[1], array.shape[0], tile):
        yield _tiff_layout(np.ascontiguousarray(array[y : y + h, x : x + w]))


def _tiff_layout(block: np.ndarray) -> np.ndarray:
    return block[:, :, 0] if block.shape[2] == 1 else block


def write_tiled_tiff(
    path: str | os.PathLike,
    predict: Predictor,
    width: int,
    height: int,
    channels: int,
    bits: int = 8,
    tile: int = TIFF_TILE,
    compression: str | None = "zlib",
) -> list[tuple[int, int]]:
    """Write a tiled, pyramidal BigTIFF, rendering one tile at a time.

    Args:
        path: the .tif file.
        predict: (x, y, w, h) -> (h, w, C) float values in [0, 1].
        width, height, channels: the image (channels as in :func:`write_png`;
            2 and 4 mark the last one as unassociated alpha).
        bits: 8 or 16.
        tile: tile side, a multiple of 16 (TIFF's rule).
        compression: "zlib" (Deflate, with horizontal differencing) or None.

    Returns:
        The (width, height) of every level, full resolution first.
    """
    import tifffile

    dtype = _SCALES[bits][1]
    sizes = pyramid_sizes(width, height, tile)
    options = {
        "dtype": dtype,
        "tile": (tile, tile),
        "compression": compression,
        "predictor": compression is not None,
        "photometric": "rgb" if channels >= 3 else "minisblack",
        "extrasamples": ("unassalpha",) if channels in (2, 4) else None,
        "metadata": None,
    }

    def full_resolution(lower: list[np.ndarray]) -> Iterator[np.ndarray]:
        for x, y, w, h in tiles(width, height, tile):
            block = quantise(predict(x, y, w, h), bits).reshape(h, w, channels)
            if lower:
                half = downsample(block)
                lower[0][y // 2 : y // 2 + half.shape[0], x // 2 : x // 2 + half.shape[1]] = half
            yield _tiff_layout(block)

    def write(temporary: Path) -> None:
        with contextlib.ExitStack() as spills:
            lower = [spills.enter_context(SpillArray(temporary.parent, (h, w, channels), dtype)) for w, h in sizes[1:]]
            with tifffile.TiffWriter(temporary, bigtiff=True) as tiff:
                shape = (height, width, channels)[: 2 if channels == 1 else 3]
                tiff.write(full_resolution(lower), shape=shape, subifds=len(lower), **options)
                for level, array in enumerate(lower):
                    if level + 1 < len(lower):
                        _fill_from(lower[level + 1], array, tile)
                    shape = array.shape[: 2 if channels == 1 else 3]
                    tiff.write(_tiles_of(array, tile), shape=shape, subfiletype=1, **options)

    atomic_write_with(path, write)
    return sizes


def _fill_from(smaller: np.ndarray, larger: np.ndarray, tile: int) -> None:
    """Fill ``smaller`` with the 2 x 2 box mean of ``larger``, one tile at a time (tile even)."""
    for x, y, w, h in tiles(larger.shape[1], larger.shape[0], tile):
        half = downsample(larger[y : y + h, x : x + w])
        smaller[y // 2 : y // 2 + half.shape[0], x // 2 : x // 2 + half.shape[1]] = half
