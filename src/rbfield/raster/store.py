"""An image held as stored: 8- or 16-bit integers, never as floats.

A :class:`PixelStore` keeps an (H, W, C) uint8 or uint16 array, C in 1..4,
and hands out float32 values in [0, 1] (value / 255 or / 65535, as
:func:`rbfield.signals.image.image_to_float` computes them) only for the
pixels asked for. A 24-megapixel RGB photo takes 72 MB this way instead of
288 MB as float32.

A float32 array that a caller already made (the Python API's
``ImageSignal(pixels)``) is kept as it is, without a copy, and its values are
handed out unchanged: quantising it would change what is fitted. Files are
never read into floats.

Reading:

* TIFF and BigTIFF are read with ``tifffile``, one tile (or strip) at a time,
  each decoded straight into the preallocated array, so a page is never held
  twice or as floats. ``tifffile`` rather than ``pyvips``: it is a pure wheel
  that scikit-image already depends on, it reads each tile or strip on its own
  and it writes tiled, pyramidal BigTIFF; ``pyvips`` needs the libvips library
  installed on the system. Without the optional ``imagecodecs`` package,
  tifffile decodes uncompressed, Deflate (zlib) and PackBits TIFFs.
* PNG and JPEG are decoded once by Pillow and copied into the array in bands
  of rows; while decoding, Pillow's own buffer (up to 4 bytes a pixel) exists
  beside the array. 16-bit colour PNGs, which Pillow reduces to 8 bits, are
  read row by row with pypng.

Before anything is allocated the size declared in the file's header is
checked against the memory available (and an optional cap), so an absurd
header (a BigTIFF claiming 10^6 x 10^6 pixels) is refused at once.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path

import numpy as np
import torch

from rbfield.errors import RbfieldError
from rbfield.memory import amount, available_memory

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
#: Rows copied per band out of Pillow's decoded image.
_PILLOW_BAND_ROWS = 256
#: Pillow modes read as they are, and the modes others are converted to.
_PILLOW_DIRECT = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4, "I;16": 1, "I;16L": 1, "I;16B": 1}
_PILLOW_CONVERT = {"1": "L", "P": "RGB", "PA": "RGBA", "CMYK": "RGB", "YCbCr": "RGB", "La": "LA", "RGBa": "RGBA"}


def check_fits(
    name: str, width: int, height: int, channels: int, itemsize: int, max_bytes: int | None = None, extra: int = 0
) -> int:
    """Refuse an image that will not fit, before anything is allocated.

    Args:
        name: the file, for the message.
        width, height, channels, itemsize: the declared layout (itemsize in bytes per value).
        max_bytes: a cap of the caller's own, or None for the available memory alone.
        extra: bytes the decoder needs beside the array while it reads.

    Returns:
        The array's size in bytes.

    Raises:
        RbfieldError: naming the bytes needed and the bytes available.
    """
    size = width * height * channels * itemsize
    available = available_memory()
    limit = available if max_bytes is None else min(max_bytes, available)
    if size + extra > limit:
        decoding = f" (+{amount(extra)} while decoding)" if extra else ""
        cap = f" (capped at {amount(max_bytes)})" if max_bytes is not None and max_bytes < available else ""
        raise RbfieldError(
            f"{name}: {width} x {height} x {channels} x {itemsize} bytes = {amount(size)}{decoding} needed, "
            f"{amount(limit)} available{cap}; use a smaller image or free memory"
        )
    return size


def check_image_file(path: str | os.PathLike) -> Path:
    """The path of an image file that exists, is a file and is not empty; a clear error otherwise."""
    path = Path(path)
    if not path.exists():
        raise RbfieldError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise RbfieldError(f"{path}: is a folder; pass an image file (PNG, JPEG or TIFF)")
    if path.stat().st_size == 0:
        raise RbfieldError(f"{path}: the file is empty (0 bytes); pass a PNG, JPEG or TIFF image")
    return path


class PixelStore:
    """An (H, W, C) uint8 or uint16 image with float access to parts of it.

    Args:
        array: (H, W, C) or (H, W) uint8/uint16 array, or float32 values in
            [0, 1] (used as given), C in 1..4; kept, not copied.
        name: shown in messages.
    """

    def __init__(self, array: np.ndarray, name: str = "image"):
        if array.ndim == 2:
            array = array[:, :, None]
        if array.dtype not in (np.uint8, np.uint16, np.float32):
            raise RbfieldError(
                f"{name}: pixels are {array.dtype}; a PixelStore holds 8- or 16-bit images or float32 in [0, 1]"
            )
        if array.ndim != 3 or not 1 <= array.shape[2] <= 4:
            raise RbfieldError(f"{name}: unsupported image layout {array.shape}; expected HxW or HxWxC with C <= 4")
        if array.shape[0] == 0 or array.shape[1] == 0:
            raise RbfieldError(f"{name}: the image has size 0 ({array.shape[1]}x{array.shape[0]})")
        self.array = array
        self.name = name
        self.height, self.width, self.channels = array.shape

    @classmethod
    def open(cls, path: str | os.PathLike, max_bytes: int | None = None) -> PixelStore:
        """Read a TIFF/BigTIFF (tile by tile), PNG or JPEG into a compact array.

        Args:
            path: the image file; multi-page TIFFs give their first page.
            max_bytes: refuse images whose array would be larger than this.

        Raises:
            RbfieldError: missing, empty or unreadable file, an unsupported
                layout or sample type, too little memory, or a corrupt or
                truncated tile (named by its index and position).
        """
        path = check_image_file(path)
        try:
            with open(path, "rb") as file:
                header = file.read(26)
        except PermissionError:
            raise RbfieldError(f"{path}: permission denied; make the file readable") from None
        if header[:4] in _TIFF_MAGIC:
            array = _read_tiff(path, max_bytes)
        elif _is_16bit_colour_png(header):
            array = _read_png_rows(path, max_bytes)
        else:
            array = _read_with_pillow(path, max_bytes)
        return cls(array, name=path.name)

    @property
    def scale(self) -> int:
        """The value of full intensity: 255 (8-bit), 65535 (16-bit) or 1 (float32)."""
        if self.array.dtype == np.float32:
            return 1
        return int(np.iinfo(self.array.dtype).max)

    @property
    def nbytes(self) -> int:
        """Bytes held by the pixel array."""
        return int(self.array.nbytes)

    @property
    def n_pixels(self) -> int:
        return self.height * self.width

    def read_region(self, x: int, y: int, w: int, h: int) -> np.ndarray:
        """The stored values of columns x..x+w-1 and rows y..y+h-1: an (h, w, C)
        uint8/uint16 view (not a copy).

        Raises:
            RbfieldError: the region is empty or leaves the image.
        """
        if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > self.width or y + h > self.height:
            raise RbfieldError(
                f"{self.name}: region x={x}, y={y}, {w}x{h} is not inside the {self.width}x{self.height} image"
            )
        return self.array[y : y + h, x : x + w]

    def read_float(self, x: int, y: int, w: int, h: int) -> np.ndarray:
        """A region as (h, w, C) float32 in [0, 1], rounded as image_to_float rounds."""
        return self.read_region(x, y, w, h).astype(np.float32) / float(self.scale)

    def gather(self, rows: torch.Tensor | np.ndarray, cols: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Values of the pixels (rows[b], cols[b]) as (B, C) float32 in [0, 1].

        Costs O(B) whatever the image's size. Indices must lie in the image.
        """
        rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        return torch.from_numpy(self.array[rows, cols]).float() / float(self.scale)


def _is_16bit_colour_png(header: bytes) -> bool:
    """True for a 16-bit grey+alpha, RGB or RGBA PNG (Pillow reduces those to 8 bits)."""
    is_png = header[:8] == b"\x89PNG\r\n\x1a\n" and header[12:16] == b"IHDR"
    return is_png and len(header) >= 26 and header[24] == 16 and header[25] in (2, 4, 6)


def _read_png_rows(path: Path, max_bytes: int | None) -> np.ndarray:
    """A 16-bit colour PNG, decoded row by row by pypng into the array."""
    import png

    try:
        width, height, rows, info = png.Reader(filename=str(path)).asDirect()
        channels = info["planes"]
        check_fits(str(path), width, height, channels, 2, max_bytes)
        array = np.empty((height, width, channels), np.uint16)
        for index, row in enumerate(rows):
            array[index] = np.asarray(row, dtype=np.uint16).reshape(width, channels)
    except png.Error as error:
        raise RbfieldError(f"{path}: not a readable PNG ({error})") from None
    return array


@contextlib.contextmanager
def _pillow_without_pixel_limit():
    """Pillow refuses images above ~179 megapixels as decompression bombs;
    :func:`check_fits` bounds the size instead while this is active."""
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def _read_with_pillow(path: Path, max_bytes: int | None) -> np.ndarray:
    """PNG, JPEG and other Pillow formats, decoded once and copied in bands of rows."""
    from PIL import Image, UnidentifiedImageError

    try:
        with _pillow_without_pixel_limit(), Image.open(path) as image:
            mode = image.mode
            target_mode = mode if mode in _PILLOW_DIRECT else _PILLOW_CONVERT.get(mode)
            if mode == "P" and "transparency" in image.info:
                target_mode = "RGBA"
            if target_mode is None:
                raise RbfieldError(f"{path}: Pillow mode {mode} is not an 8- or 16-bit image; convert it first")
            channels = _PILLOW_DIRECT[target_mode]
            dtype = np.uint16 if target_mode.startswith("I;16") else np.uint8
            width, height = image.size
            check_fits(str(path), width, height, channels, dtype().itemsize, max_bytes, extra=4 * width * height)
            image.load()
            array = np.empty((height, width, channels), dtype)
            for top in range(0, height, _PILLOW_BAND_ROWS):
                bottom = min(top + _PILLOW_BAND_ROWS, height)
                band = image.crop((0, top, width, bottom))
                if band.mode != target_mode:
                    band = band.convert(target_mode)
                array[top:bottom] = np.asarray(band).reshape(bottom - top, width, channels)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise RbfieldError(
            f"{path}: not a readable image ({type(error).__name__}); pass a PNG, JPEG or TIFF file"
        ) from None
    return array


def _read_tiff(path: Path, max_bytes: int | None) -> np.ndarray:
    """The first page of a TIFF/BigTIFF, decoded tile by tile (or strip by strip)
    into a preallocated uint8/uint16 array."""
    import tifffile

    try:
        tiff = tifffile.TiffFile(path)
    except (tifffile.TiffFileError, ValueError, OSError) as error:
        raise RbfieldError(f"{path}: not a readable TIFF ({error})") from None
    with tiff:
        page = tiff.pages[0]
        height, width, channels = page.imagelength, page.imagewidth, page.samplesperpixel
        if page.dtype not in (np.uint8, np.uint16):
            raise RbfieldError(
                f"{path}: TIFF samples are {page.dtype} ({page.bitspersample}-bit); expected 8- or 16-bit integers"
            )
        if page.imagedepth != 1 or not 1 <= channels <= 4:
            raise RbfieldError(f"{path}: unsupported TIFF layout ({channels} samples, depth {page.imagedepth})")
        if page.compression != 1:
            try:
                tifffile.TIFF.DECOMPRESSORS[page.compression]
            except KeyError:
                raise RbfieldError(
                    f"{path}: TIFF compression {page.compression.name} needs the imagecodecs package "
                    "(pip install imagecodecs)"
                ) from None
        check_fits(str(path), width, height, channels, page.dtype.itemsize, max_bytes)
        array = np.empty((height, width, channels), page.dtype)
        handle = tiff.filehandle
        for index, (offset, count) in enumerate(zip(page.dataoffsets, page.databytecounts)):
            where = _segment_name(page, index)
            if count == 0:  # a sparse segment: never written, so zero
                data = None
            else:
                handle.seek(offset)
                data = handle.read(count)
                if len(data) < count:
                    raise RbfieldError(
                        f"{path}: {where} is truncated ({len(data)} of {count} bytes); the file is incomplete"
                    )
            try:
                segment, (plane, _, top, left, _), shape = page.decode(data, index, jpegtables=page.jpegtables)
            except Exception as error:  # noqa: BLE001 - codecs raise many types for corrupt data
                raise RbfieldError(f"{path}: {where} is corrupt ({type(error).__name__}: {error})") from None
            _place_segment(array, segment, shape, plane, top, left, page.planarconfig)
    return array


def _place_segment(array: np.ndarray, segment, shape: tuple, plane: int, top: int, left: int, planarconfig: int):
    """Copy a decoded (1, rows, cols, samples) segment into the array, cut at
    the image's edges; a missing (sparse) segment of ``shape`` is zero."""
    height, width, _ = array.shape
    rows, cols = min(shape[1], height - top), min(shape[2], width - left)
    target = array[top : top + rows, left : left + cols]
    if planarconfig != 1:
        target = target[:, :, plane : plane + 1]
    target[...] = 0 if segment is None else segment[0, :rows, :cols]


def _segment_name(page, index: int) -> str:
    """'tile 5 (row 1, column 2, x=512, y=256)' or 'strip 3 (rows 48-63)', for messages."""
    if page.is_tiled:
        across = math.ceil(page.imagewidth / page.tilewidth)
        down = math.ceil(page.imagelength / page.tilelength)
        row, col = index // across % down, index % across
        return f"tile {index} (row {row}, column {col}, x={col * page.tilewidth}, y={row * page.tilelength})"
    strips = math.ceil(page.imagelength / page.rowsperstrip)
    first = index % strips * page.rowsperstrip
    last = min(first + page.rowsperstrip, page.imagelength) - 1
    return f"strip {index} (rows {first}-{last})"
