"""The image signal: pixels in, coordinates and targets out, PSNR/SSIM judged.

Coordinates: pixel (row i, column j) of an H x W image has its centre at
``x = ((j + 0.5) / W, (i + 0.5) / H)`` in [0, 1]^2, so an image can be
reconstructed at any other size by sampling the same square at that size's
pixel centres. Values are the channels scaled to [0, 1] (8-bit / 255,
16-bit / 65535); grey images have 1 channel, RGBA keeps alpha as a 4th.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch

from rbfield.errors import RbfieldError
from rbfield.metrics import psnr, psnr_from_mse
from rbfield.raster.grid import Predictor, field_predictor
from rbfield.raster.sampling import importance_sample, init_sample_size, random_batch
from rbfield.raster.store import PixelStore, check_image_file
from rbfield.raster.tiled_metrics import SUBSET_PIXELS, PixelSubset, tiled_metrics
from rbfield.signals.image_defaults import DEFAULT_BATCH
from rbfield.spec import SignalSpec

#: Points per forward pass when reconstructing, to bound memory.
RENDER_TILE = 2**16


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read PNG, JPEG, TIFF (and anything else imageio reads) as float32 in [0, 1].

    Returns:
        (H, W, C) float32 array, C in {1, 2, 3, 4}.

    Raises:
        RbfieldError: missing or unreadable file, not an image, empty image,
            unsupported layout, or NaN/inf pixels.
    """
    import imageio.v3 as iio

    path = check_image_file(path)
    try:
        array = _read_16bit_colour_png(path)
        if array is None:
            array = np.asarray(iio.imread(path))
    except PermissionError:
        raise RbfieldError(f"{path}: permission denied; make the file readable") from None
    except Exception as error:  # imageio raises many types for undecodable files
        raise RbfieldError(
            f"{path}: not a readable image ({type(error).__name__}); pass a PNG, JPEG or TIFF file"
        ) from None
    return image_to_float(array, str(path))


def _read_16bit_colour_png(path: Path) -> np.ndarray | None:
    """Read a 16-bit grey+alpha/RGB/RGBA PNG with pypng (Pillow reduces these
    to 8 bits); None for any other file."""
    with open(path, "rb") as file:
        header = file.read(26)
    is_png = header[:8] == b"\x89PNG\r\n\x1a\n" and header[12:16] == b"IHDR"
    if not (is_png and header[24] == 16 and header[25] in (4, 2, 6)):
        return None
    import png

    width, height, rows, info = png.Reader(filename=str(path)).asDirect()
    channels = info["planes"]
    return np.vstack([np.asarray(row, dtype=np.uint16) for row in rows]).reshape(height, width, channels)


def image_to_float(array: np.ndarray, name: str = "image") -> np.ndarray:
    """Convert an integer or float image array to (H, W, C) float32 in [0, 1]."""
    if array.ndim == 4:  # multi-page TIFF or animation: the first page
        array = array[0]
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] > 4:
        raise RbfieldError(f"{name}: unsupported image layout {array.shape}; expected HxW or HxWxC with C <= 4")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise RbfieldError(f"{name}: the image has size 0 ({array.shape[1]}x{array.shape[0]})")
    if array.dtype == np.bool_:
        pixels = array.astype(np.float32)
    elif np.issubdtype(array.dtype, np.integer):
        pixels = array.astype(np.float32) / float(np.iinfo(array.dtype).max)
    else:
        pixels = array.astype(np.float32)
        if not np.isfinite(pixels).all():
            raise RbfieldError(f"{name}: the image contains NaN or infinite pixels; fix or mask them first")
        pixels = pixels.clip(0.0, 1.0)
    return np.ascontiguousarray(pixels)


def encode_png(data: np.ndarray) -> bytes:
    """Encode an (H, W, C) uint8 or uint16 array as PNG bytes (C = 1, 2, 3 or 4).

    Written here because Pillow cannot write 16-bit RGB(A) PNGs. Uses filter
    type 0 on every row and zlib level 6.
    """
    import struct
    import zlib

    height, width, channels = data.shape
    bit_depth = 16 if data.dtype == np.uint16 else 8
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    rows = data.astype(">u2" if bit_depth == 16 else np.uint8).reshape(height, -1).view(np.uint8)
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1).tobytes()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def save_png(path: str | os.PathLike, pixels: np.ndarray | torch.Tensor, bits: int = 8) -> None:
    """Write (H, W, C) [0, 1] pixels as an 8- or 16-bit PNG, atomically."""
    from rbfield.io import atomic_write_bytes

    if isinstance(pixels, torch.Tensor):
        pixels = pixels.detach().cpu().numpy()
    scale, dtype = (255, np.uint8) if bits == 8 else (65535, np.uint16)
    data = np.round(np.clip(pixels, 0.0, 1.0) * scale).astype(dtype)
    atomic_write_bytes(path, encode_png(data))


def centre_crop(photo: np.ndarray, size: int) -> np.ndarray:
    """The central size x size window of an (H, W, ...) array, contiguous."""
    top, left = (photo.shape[0] - size) // 2, (photo.shape[1] - size) // 2
    return np.ascontiguousarray(photo[top : top + size, left : left + size])


def pixel_centres(width: int, height: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(H * W, 2) pixel-centre coordinates (x, y) in [0, 1]^2, row-major."""
    xs = (torch.arange(width, dtype=torch.float32, device=device) + 0.5) / width
    ys = (torch.arange(height, dtype=torch.float32, device=device) + 0.5) / height
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x.reshape(-1), grid_y.reshape(-1)], dim=1)


@torch.no_grad()
def reconstruct(field: torch.nn.Module, width: int, height: int, tile: int = RENDER_TILE) -> torch.Tensor:
    """Sample a field at the pixel centres of a width x height image.

    Evaluates ``tile`` points at a time, so memory is bounded for any size.

    Returns:
        (H, W, C) float32 tensor, unclipped.
    """
    device = next(field.parameters()).device
    xs = (torch.arange(width, dtype=torch.float32, device=device) + 0.5) / width
    rows_per_tile = max(1, tile // width)
    bands = []
    for top in range(0, height, rows_per_tile):
        ys = (torch.arange(top, min(top + rows_per_tile, height), dtype=torch.float32, device=device) + 0.5) / height
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        coords = torch.stack([grid_x.reshape(-1), grid_y.reshape(-1)], dim=1)
        bands.append(field(coords).reshape(ys.shape[0], width, -1))
    return torch.cat(bands).float()


class ImageSignal:
    """A photo as a signal for :func:`rbfield.fit`, held as stored.

    The pixels live in a :class:`~rbfield.raster.store.PixelStore`: an image
    read by :meth:`from_path` as its 8- or 16-bit integers (never a float
    copy), a float array given by the caller as float32 with its values
    exactly. Nothing else is kept per pixel, so memory and the cost of a step
    do not grow with the image:

    * ``batch`` draws ``batch_size`` pixels uniformly with replacement, O(batch);
      an image of at most ``batch_size`` pixels uses all of them every step
      (their coordinates and targets are kept: O(batch) too);
    * ``evaluate`` measures PSNR on the whole image when it has at most
      :data:`~rbfield.raster.tiled_metrics.SUBSET_PIXELS` pixels (history key
      ``"psnr"``), else on a fixed random subset of that many pixels (key
      ``"psnr_subset"``), so a progress point costs the same at any size;
    * ``rbf_init_samples`` draws a sample sized by the number of RBFs;
    * ``final_metrics`` renders and scores the whole image tile by tile.

    Args:
        pixels: (H, W, C) float array/tensor in [0, 1]; a uint8/uint16 array
            (value / 255 or / 65535); or a PixelStore.
        name: shown in reports.
        batch_size: pixels per step; when the image has at most this many
            pixels, every step uses all of them (as NeuRBF does).
        device: where batches are delivered.

    Attributes:
        store: the PixelStore; width, height, channels: the image's size.
        load_seconds: seconds :meth:`from_path` took to read the file (0 otherwise).
    """

    def __init__(self, pixels, name: str = "image", batch_size: int = DEFAULT_BATCH, device="cpu"):
        self.store = pixels if isinstance(pixels, PixelStore) else PixelStore(_as_stored(pixels, name), name)
        self.name = name
        self.height, self.width, self.channels = self.store.height, self.store.width, self.store.channels
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.load_seconds = 0.0
        self._all_pixels = self._whole_image() if self.n_pixels <= batch_size else None
        self._subset: PixelSubset | None = None

    @classmethod
    def from_path(cls, path: str | os.PathLike, max_bytes: int | None = None, **kwargs) -> ImageSignal:
        """Read a PNG, JPEG or (Big)TIFF with :meth:`PixelStore.open` (TIFF tile by tile).

        Args:
            path: the image file.
            max_bytes: refuse images whose pixels would take more than this many bytes.
            **kwargs: as the constructor (batch_size, device).
        """
        started = time.perf_counter()
        signal = cls(PixelStore.open(path, max_bytes=max_bytes), name=Path(path).name, **kwargs)
        signal.load_seconds = time.perf_counter() - started
        return signal

    def spec(self) -> SignalSpec:
        return SignalSpec("image", 2, self.channels, (self.width, self.height))

    def to(self, device: str | torch.device) -> ImageSignal:
        """Deliver batches on ``device`` (the field's) from now on; an image of at most ``batch_size`` pixels
        keeps its (H * W, 2) coordinates and (H * W, C) targets there, one tensor for every step. Returns self."""
        self.device = torch.device(device)
        if self._all_pixels is not None:
            self._all_pixels = tuple(tensor.to(self.device) for tensor in self._all_pixels)
        return self

    @property
    def n_pixels(self) -> int:
        return self.height * self.width

    def _whole_image(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Coordinates (H * W, 2) and targets (H * W, C) of every pixel, row-major, on the device."""
        targets = torch.from_numpy(self.store.read_float(0, 0, self.width, self.height).reshape(-1, self.channels))
        return pixel_centres(self.width, self.height, self.device), targets.to(self.device)

    # --- what the trainer calls -------------------------------------------------
    def batch(self, step: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(coords (B, 2), targets (B, C)): all pixels, or batch_size drawn uniformly (O(batch))."""
        if self._all_pixels is not None:
            return self._all_pixels
        coords, targets = random_batch(self.store, self.batch_size, generator)
        return coords.to(self.device), targets.to(self.device)

    def training_loss(self, field: torch.nn.Module, coords: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean squared error over the batch and channels."""
        return torch.mean((field(coords) - targets) ** 2)

    def progress(self, loss: float) -> dict:
        """Numbers shown beside the loss on the progress bar."""
        return {"psnr": psnr_from_mse(loss)}

    def after_step(self, field: torch.nn.Module, step: int) -> None:
        """Nothing: an image needs no bookkeeping between steps."""

    def evaluate(self, field: torch.nn.Module) -> dict:
        """Quick PSNR (dB) of the clipped field: ``{"psnr": whole image}`` for an image of
        at most SUBSET_PIXELS pixels, else ``{"psnr_subset": on a fixed random subset}``."""
        if self.n_pixels <= SUBSET_PIXELS:
            prediction = reconstruct(field, self.width, self.height).clamp(0, 1).cpu()
            return {"psnr": psnr(prediction, torch.from_numpy(self.store.read_float(0, 0, self.width, self.height)))}
        if self._subset is None:
            self._subset = PixelSubset(self.store)
        return {"psnr_subset": self._subset.psnr(field)}

    # --- initialisation and reporting -----------------------------------------
    def rbf_init_samples(self, n_kernels: int, weight_power: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Weighted points for placing ``n_kernels`` RBFs: pixel centres (M, 2), weights (M,), pixel size.

        Every pixel with its Sobel gradient magnitude (summed over channels)
        to ``weight_power`` when the image has at most ``init_sample_size(n_kernels)``
        pixels (at least 2^20); otherwise that many pixels drawn in proportion to
        that weight, each of weight 1 (see :func:`rbfield.raster.sampling.importance_sample`).
        """
        return importance_sample(self.store, init_sample_size(n_kernels), power=weight_power)

    def final_metrics(self, field: torch.nn.Module, predict: Predictor | None = None) -> dict:
        """Whole-image PSNR (dB) and SSIM (None below 11x11 pixels) of the clipped reconstruction.

        Computed tile by tile (:func:`rbfield.raster.tiled_metrics.tiled_metrics`):
        the values of :func:`rbfield.metrics.psnr` and :func:`~rbfield.metrics.ssim`
        on the whole reconstruction, in memory that does not grow with the image.

        Args:
            predict: the region predictor scored, if not
                ``field_predictor(field, width, height)`` (e.g. one that also
                keeps what it renders, so the render is made once).
        """
        metrics = tiled_metrics(self.store, predict or field_predictor(field, self.width, self.height))
        return {"psnr": metrics["psnr"], "ssim": metrics.get("ssim")}


def _as_stored(pixels, name: str) -> np.ndarray:
    """A caller's pixels as a PixelStore array: uint8/uint16 as they are, anything else as float32."""
    array = np.asarray(pixels)
    if array.dtype not in (np.uint8, np.uint16):
        array = np.asarray(array, dtype=np.float32)
    if array.ndim != 3 or min(array.shape[:2]) == 0:
        raise RbfieldError(f"{name}: expected an HxWxC image, got shape {tuple(array.shape)}")
    return array
