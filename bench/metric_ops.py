"""Whole-image metrics and RBF placement weights: each fast path against its reference twin.

Two per-tile operations that scale with the pixels of a large image (the
final metrics read every pixel once, RBF placement twice), on a real photo,
in one run, median over ``--repeats`` after a warm-up:

* SSIM of one 522x522 tile (a 512 tile with its 10-pixel halo): the banded
  matrix-product blur of :func:`rbfield.metrics.ssim_map_sum` against five
  separable ``conv2d`` blurs in float64 (the twin, written here);
* the Sobel placement weight of one 512x512 tile:
  :func:`rbfield.raster.sampling.sobel_region` against scikit-image's
  ``sobel`` per channel on the same halo-padded block;
* the whole photo's PSNR and SSIM, tile by tile
  (:func:`rbfield.raster.tiled_metrics.tiled_metrics`), with each twin
  swapped in, against a fixed degraded copy of the photo (no field, so the
  figure is the metrics' own cost).

Writes a Markdown table to ``--out``::

    python bench/metric_ops.py --threads 2
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from data_paths import PHOTOS
from ops import median_seconds
from rbfield.io import atomic_write_bytes
from rbfield.metrics import SSIM_K1, SSIM_K2, gaussian_window, ssim_map_sum
from rbfield.raster import tiled_metrics as tiled_metrics_module
from rbfield.raster.sampling import sobel_region
from rbfield.raster.store import PixelStore


def ssim_map_sum_by_convolution(prediction: torch.Tensor, target: torch.Tensor, window: torch.Tensor):
    """The twin of :func:`ssim_map_sum`: five float64 ``conv2d`` blurs, one per moment."""

    def blur(x):
        x = F.conv2d(x, window.view(1, 1, -1, 1))
        return F.conv2d(x, window.view(1, 1, 1, -1))

    c1, c2 = SSIM_K1**2, SSIM_K2**2
    a = prediction.double().permute(2, 0, 1)[:, None]
    b = target.double().permute(2, 0, 1)[:, None]
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return ssim_map.sum().item(), ssim_map.numel()


def sobel_by_scikit_image(store: PixelStore, x: int, y: int, w: int, h: int) -> np.ndarray:
    """The twin of :func:`sobel_region`: scikit-image's ``sobel`` per channel on the halo-padded block."""
    from skimage.filters import sobel

    block = store.read_float(x - 1, y - 1, w + 2, h + 2)  # an interior tile: the halo is inside the image
    return sum(sobel(block[:, :, c]) for c in range(store.channels))[1:-1, 1:-1]


def degraded(pixels: np.ndarray) -> np.ndarray:
    """A fixed (H, W, C) float32 stand-in for a reconstruction: the photo with Gaussian noise of 1 %."""
    noise = np.random.default_rng(0).normal(0.0, 0.01, pixels.shape).astype(np.float32)
    return np.clip(pixels.astype(np.float32) / 255 + noise, 0, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photo", default=str(PHOTOS / "twowings-2560x1600.jpg"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--out", default="bench/results/metric_ops.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    pixels = np.asarray(Image.open(args.photo).convert("RGB"))
    store = PixelStore(pixels)
    prediction = degraded(pixels)
    tile_target = torch.from_numpy(store.read_float(512, 512, 522, 522)).double()
    tile_prediction = torch.from_numpy(prediction[512:1034, 512:1034]).double()
    window = gaussian_window()

    def whole_photo(ssim_function):
        with mock.patch.object(tiled_metrics_module, "ssim_map_sum", ssim_function):
            return tiled_metrics_module.tiled_metrics(store, lambda x, y, w, h: prediction[y : y + h, x : x + w])

    cases = [
        (
            "SSIM of a 522x522 tile",
            lambda: ssim_map_sum_by_convolution(tile_prediction, tile_target, window),
            lambda: ssim_map_sum(tile_prediction, tile_target, window),
        ),
        (
            "Sobel weight of a 512x512 tile",
            lambda: sobel_by_scikit_image(store, 512, 512, 512, 512),
            lambda: sobel_region(store, 512, 512, 512, 512),
        ),
        (
            f"PSNR and SSIM of the whole {store.width}x{store.height} photo",
            lambda: whole_photo(ssim_map_sum_by_convolution),
            lambda: whole_photo(ssim_map_sum),
        ),
    ]
    agreement = abs(whole_photo(ssim_map_sum)["ssim"] - whole_photo(ssim_map_sum_by_convolution)["ssim"])
    lines = [
        f"# Metric and placement ops, fast against reference ({platform.processor() or platform.machine()}, "
        f"{args.threads} threads, median of {args.repeats})",
        "",
        f"Photo: `{Path(args.photo).name}`. Whole-photo SSIM of the two paths differs by {agreement:.1e}.",
        "",
        "| op | reference (ms) | fast (ms) | speed-up |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, reference, fast in cases:
        reference_ms = 1000 * median_seconds(reference, args.repeats)
        fast_ms = 1000 * median_seconds(fast, args.repeats)
        lines.append(f"| {name} | {reference_ms:.1f} | {fast_ms:.1f} | {reference_ms / fast_ms:.1f}x |")
        print(lines[-1], flush=True)
    atomic_write_bytes(args.out, ("\n".join(lines) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
