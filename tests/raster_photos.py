"""Real photos for the raster tests: scikit-image's bundled photographs, cut
and tiled into mosaics of any size (the tests write them to tmp folders)."""

from __future__ import annotations

import numpy as np
from skimage import data


def mosaic(height: int, width: int) -> np.ndarray:
    """(height, width, 3) uint8: astronaut, coffee and chelsea side by side, repeated."""
    photos = [data.astronaut()[:300, :400], data.coffee()[:300, :400], data.chelsea()[:300, :400]]
    row = np.concatenate(photos, axis=1)
    reps = (-(-height // row.shape[0]), -(-width // row.shape[1]), 1)
    return np.ascontiguousarray(np.tile(row, reps)[:height, :width])


def degraded(pixels: np.ndarray, seed: int = 0) -> np.ndarray:
    """A plausible reconstruction of (H, W, C) float32 pixels: blurred, noisy, clipped to [0, 1]."""
    from skimage.filters import gaussian

    noise = np.random.default_rng(seed).normal(0, 0.02, pixels.shape)
    return np.clip(gaussian(pixels, sigma=1.0, channel_axis=2) + noise, 0, 1).astype(np.float32)
