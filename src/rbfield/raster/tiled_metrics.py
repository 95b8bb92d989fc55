"""PSNR and SSIM of a whole image, computed tile by tile.

:func:`tiled_metrics` gives the values of :func:`rbfield.metrics.psnr` and
:func:`rbfield.metrics.ssim` on the whole image (the same settings, equal up to
the order of summation) while only one tile of prediction and target exists
at a time. Each tile's prediction is read with a halo of ``SSIM_WINDOW - 1``
pixels to its right and below, so that the tile contributes exactly the SSIM
map values whose 11 x 11 window starts in it; the sums of squared errors, of
the SSIM map and their counts are added up over tiles.

:class:`PixelSubset` is the cheap progress measure for training: PSNR on a
fixed random subset of pixels chosen once.
"""

from __future__ import annotations

import numpy as np
import torch

from rbfield.metrics import SSIM_WINDOW, gaussian_window, psnr, psnr_from_mse, ssim_map_sum
from rbfield.raster.grid import Predictor, pixel_coords
from rbfield.raster.sampling import tiles
from rbfield.raster.store import PixelStore

#: Side of the tiles metrics are computed in (before the halo).
METRIC_TILE = 512
#: Pixels of the progress subset.
SUBSET_PIXELS = 2**16


def tiled_metrics(store: PixelStore, predict: Predictor, tile: int = METRIC_TILE) -> dict:
    """Whole-image PSNR (dB) and SSIM of ``predict`` against ``store``.

    Args:
        store: the target image.
        predict: ``predict(x, y, w, h)`` -> (h, w, C) float prediction of that
            region, used as given (clip it to [0, 1] inside, as
            :func:`~rbfield.raster.grid.field_predictor` does).
        tile: tile side; memory is O((tile + 10)^2 x C).

    Returns:
        {"psnr": dB, "ssim": mean SSIM}; no "ssim" for images under 11 x 11.
    """
    halo = SSIM_WINDOW - 1
    window = gaussian_window()
    squared_error, ssim_total, ssim_count = 0.0, 0.0, 0
    for x, y, w, h in tiles(store.width, store.height, tile):
        wide, tall = min(w + halo, store.width - x), min(h + halo, store.height - y)
        prediction = torch.as_tensor(np.asarray(predict(x, y, wide, tall))).double()
        target = torch.from_numpy(store.read_float(x, y, wide, tall)).double()
        if prediction.shape != target.shape:
            raise ValueError(
                f"predict gave {tuple(prediction.shape)} for a {wide}x{tall} region; expected {tuple(target.shape)}"
            )
        squared_error += ((prediction[:h, :w] - target[:h, :w]) ** 2).sum().item()
        if wide >= SSIM_WINDOW and tall >= SSIM_WINDOW:
            total, count = ssim_map_sum(prediction, target, window)
            ssim_total, ssim_count = ssim_total + total, ssim_count + count
    metrics = {"psnr": psnr_from_mse(squared_error / (store.n_pixels * store.channels))}
    if ssim_count:
        metrics["ssim"] = ssim_total / ssim_count
    return metrics


class PixelSubset:
    """A fixed random subset of pixels for cheap PSNR during training.

    Args:
        store: the image.
        count: pixels in the subset (all pixels if the image has fewer).
        seed: seeds the choice, made once, without replacement.

    Attributes:
        coords: (n, 2) float32 pixel centres; targets: (n, C) float32 in [0, 1].
    """

    def __init__(self, store: PixelStore, count: int = SUBSET_PIXELS, seed: int = 0):
        count = min(count, store.n_pixels)
        index = np.random.default_rng(seed).choice(store.n_pixels, size=count, replace=False, shuffle=False)
        rows, cols = torch.from_numpy(index // store.width), torch.from_numpy(index % store.width)
        self.coords = pixel_coords(rows, cols, store.width, store.height)
        self.targets = store.gather(rows, cols)

    @torch.no_grad()
    def psnr(self, field: torch.nn.Module) -> float:
        """PSNR (dB) of the field, clipped to [0, 1], on the subset."""
        device = next(field.parameters()).device
        prediction = field(self.coords.to(device)).float().clamp(0, 1).cpu()
        return psnr(prediction, self.targets)
