"""Real photos for the raster tests: scikit-image's bundled photographs, cut
and tiled into mosaics of any size (the tests write them to tmp folders)."""

from __future__ import annotations

import struct

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


def bigtiff_header(width: int, height: int, samples: int = 3) -> bytes:
    """A BigTIFF header declaring one uncompressed width x height RGB strip that the file does not hold."""
    entries = [
        (256, 16, 1, struct.pack("<Q", width)),
        (257, 16, 1, struct.pack("<Q", height)),
        (258, 3, samples, struct.pack("<" + "H" * samples, *[8] * samples)),
        (259, 3, 1, struct.pack("<H", 1)),
        (262, 3, 1, struct.pack("<H", 2)),
        (273, 16, 1, struct.pack("<Q", 16)),
        (277, 3, 1, struct.pack("<H", samples)),
        (278, 16, 1, struct.pack("<Q", height)),
        (279, 16, 1, struct.pack("<Q", width * height * samples)),
        (284, 3, 1, struct.pack("<H", 1)),
    ]
    ifd = struct.pack("<Q", len(entries))
    for tag, kind, count, value in entries:
        ifd += struct.pack("<HHQ", tag, kind, count) + value.ljust(8, b"\0")
    return b"II" + struct.pack("<HHHQ", 43, 8, 0, 16) + ifd + struct.pack("<Q", 0)
