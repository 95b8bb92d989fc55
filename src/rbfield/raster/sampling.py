"""Drawing pixels from a :class:`~rbfield.raster.store.PixelStore` at a cost
that does not grow with the image.

* :func:`random_batch`: a training batch of uniformly drawn pixels, O(batch)
  per step (no permutation or coordinate table over all pixels).
* :func:`sobel_region`: the Sobel gradient magnitude of any region, equal to
  the whole-image value that :meth:`ImageSignal.rbf_init_samples` computes
  (scikit-image's ``sobel`` per channel, summed over channels).
* :func:`importance_sample`: at most ``max_points`` pixel centres drawn in
  proportion to that magnitude, for placing RBFs by weighted k-means, in
  memory O(tile + max_points); :func:`init_sample_size` says how many points
  a number of RBFs needs.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from rbfield.encodings.rbf_init import KMEANS_WORK
from rbfield.raster.grid import pixel_coords
from rbfield.raster.store import PixelStore

#: Points handed to weighted k-means at least (when the image has more pixels).
MAX_INIT_POINTS = 2**20
#: Sampled points per RBF. With fewer, k-means fits the sample rather than the
#: image: on a 384 x 384 photo with 2048 kernels the weighted k-means objective
#: over all pixels rose by 29 / 16 / 11 / 7 % at 8 / 16 / 32 / 64 points per
#: kernel, against a full-pixel run; two seeds of the full run differ by up to 8 %.
POINTS_PER_KERNEL = 64
#: Points per RBF at least, when the k-means work bound (:data:`~rbfield.encodings.rbf_init.KMEANS_WORK`)
#: asks for fewer than :data:`POINTS_PER_KERNEL` (hundreds of thousands of kernels).
MIN_POINTS_PER_KERNEL = 16
#: Side of the square tiles the Sobel magnitude is computed in.
SOBEL_TILE = 512
#: The weight floor :func:`rbfield.encodings.rbf_init.initial_rbf_geometry`
#: adds, as a fraction of the mean weight; sampling folds it in (see below).
WEIGHT_FLOOR = 1e-3


def init_sample_size(n_kernels: int) -> int:
    """How many points :func:`importance_sample` should draw for ``n_kernels`` RBFs.

    :data:`POINTS_PER_KERNEL` per kernel while weighted k-means can afford at least 4 Lloyd iterations
    on them within its work bound; above that, fewer per kernel (at least :data:`MIN_POINTS_PER_KERNEL`),
    with as few as 3 iterations (``bench/kmeans_budget.py``).
    """
    affordable = KMEANS_WORK // 5  # a sample with 4 iterations and the final assignment
    per_bound = max(MIN_POINTS_PER_KERNEL * n_kernels, affordable)
    return max(MAX_INIT_POINTS, min(POINTS_PER_KERNEL * n_kernels, per_bound))


def random_batch(store: PixelStore, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` pixels drawn uniformly with replacement.

    Draws the same pixels, coordinates and targets as ``ImageSignal.batch``
    does from the same generator for an image of more than ``batch_size``
    pixels.

    Returns:
        coords (B, 2) float32 pixel centres in [0, 1]^2 and targets (B, C)
        float32 in [0, 1].
    """
    index = torch.randint(store.n_pixels, (batch_size,), generator=generator)
    rows, cols = index // store.width, index % store.width
    return pixel_coords(rows, cols, store.width, store.height), store.gather(rows, cols)


def sobel_region(store: PixelStore, x: int, y: int, w: int, h: int) -> np.ndarray:
    """Sobel gradient magnitude of region (x, y, w, h), summed over channels.

    Per channel this is scikit-image's ``sobel`` (``mode='reflect'``): the
    derivative ``[1, 0, -1]`` along one axis, smoothed by ``[1/4, 1/2, 1/4]``
    along the other, and the magnitude ``sqrt((d_x^2 + d_y^2) / 2)``; written
    here as float32 slices of the region, 1.9x faster than calling ``sobel``
    per channel on a 512x512 tile (``bench/metric_ops.py``), and equal to it
    within float32 rounding. The region
    is read with a 1-pixel halo, mirrored at the image's edges as
    ``mode='reflect'`` does, so every value equals the whole-image one.

    Returns:
        (h, w) float32.
    """
    left, top = max(x - 1, 0), max(y - 1, 0)
    right, bottom = min(x + w + 1, store.width), min(y + h + 1, store.height)
    block = store.read_float(left, top, right - left, bottom - top)
    pad = ((top - (y - 1), (y + h + 1) - bottom), (left - (x - 1), (x + w + 1) - right), (0, 0))
    block = np.pad(block, pad, mode="symmetric")
    planes = np.ascontiguousarray(block.transpose(2, 0, 1))  # (C, h + 2, w + 2)
    across_columns = 0.25 * planes[:, :, :-2] + 0.5 * planes[:, :, 1:-1] + 0.25 * planes[:, :, 2:]  # (C, h + 2, w)
    across_rows = 0.25 * planes[:, :-2] + 0.5 * planes[:, 1:-1] + 0.25 * planes[:, 2:]  # (C, h, w + 2)
    d_rows = across_columns[:, 2:] - across_columns[:, :-2]
    d_columns = across_rows[:, :, 2:] - across_rows[:, :, :-2]
    magnitude = np.sqrt((d_rows * d_rows + d_columns * d_columns) * np.float32(0.5))
    return magnitude.sum(axis=0, dtype=np.float32)


def placement_weight(store: PixelStore, x: int, y: int, w: int, h: int, power: float = 1.0) -> np.ndarray:
    """The RBF placement weight of region (x, y, w, h): its Sobel magnitude raised to ``power``, (h, w) float32.

    ``power`` 1 is the paper's weight; below 1 it flattens the contrast between
    edges and smooth regions, so weighted k-means leaves more RBFs to the latter.
    """
    magnitude = sobel_region(store, x, y, w, h)
    return magnitude if power == 1.0 else np.power(magnitude, power, dtype=np.float32)


def tiles(width: int, height: int, tile: int) -> Iterator[tuple[int, int, int, int]]:
    """(x, y, w, h) of the tile x tile squares covering a grid, row by row; edge tiles are cut."""
    for y in range(0, height, tile):
        for x in range(0, width, tile):
            yield x, y, min(tile, width - x), min(tile, height - y)


def importance_sample(
    store: PixelStore,
    max_points: int = MAX_INIT_POINTS,
    seed: int = 0,
    tile: int = SOBEL_TILE,
    floor: float = WEIGHT_FLOOR,
    power: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Weighted points for RBF placement, as ``rbf_init_samples`` returns them.

    An image of at most ``max_points`` pixels gives every pixel centre with its
    placement weight (:func:`placement_weight`: the Sobel magnitude to ``power``).
    A larger one gives ``max_points`` pixel centres drawn with replacement
    with probability proportional to (weight + floor x mean weight),
    each of weight 1: weighted k-means on them estimates weighted k-means on
    all pixels (the floor that ``initial_rbf_geometry`` adds is folded into
    the draw; it adds the same amount to every unit weight, which changes
    nothing). Two passes over the tiles: the first sums each tile's weight,
    the second draws each tile's share of the points.

    Args:
        store: the image.
        max_points: M, the most points returned.
        seed: seeds the draw.
        tile: side of the tiles the magnitude is computed in.
        floor: the floor's fraction of the mean weight.
        power: the exponent of the Sobel magnitude (see :func:`placement_weight`).

    Returns:
        points (M, 2) float32 pixel centres in [0, 1]^2, weights (M,) float32,
        and the pixel spacing 1 / max(W, H).
    """
    spacing = 1.0 / max(store.width, store.height)
    boxes = list(tiles(store.width, store.height, tile))
    if store.n_pixels <= max_points:
        magnitude = np.empty((store.height, store.width), np.float32)
        for x, y, w, h in boxes:
            magnitude[y : y + h, x : x + w] = placement_weight(store, x, y, w, h, power)
        index = torch.arange(store.n_pixels)
        points = pixel_coords(index // store.width, index % store.width, store.width, store.height)
        return points, torch.from_numpy(magnitude.reshape(-1)), spacing

    rng = np.random.default_rng(seed)
    sums = np.array([placement_weight(store, *box, power).sum(dtype=np.float64) for box in boxes])
    total = sums.sum()
    uniform = rng.binomial(max_points, floor / (1.0 + floor)) if total > 0 else max_points
    per_tile = rng.multinomial(max_points - uniform, sums / total) if total > 0 else np.zeros(len(boxes), np.int64)
    # int32 row and column indices, filled in place: 8 bytes a point beside the result.
    rows, cols = np.empty(max_points, np.int32), np.empty(max_points, np.int32)
    filled = 0
    for (x, y, w, h), count in zip(boxes, per_tile):
        if count == 0:
            continue
        cumulative = np.cumsum(placement_weight(store, x, y, w, h, power), dtype=np.float64, axis=None)
        drawn = np.searchsorted(cumulative, rng.random(count) * cumulative[-1], side="right")
        drawn = np.minimum(drawn, w * h - 1)
        rows[filled : filled + count] = y + drawn // w
        cols[filled : filled + count] = x + drawn % w
        filled += count
    for start in range(filled, max_points, SOBEL_TILE**2):
        flat = rng.integers(store.n_pixels, size=min(SOBEL_TILE**2, max_points - start))
        rows[start : start + flat.size] = flat // store.width
        cols[start : start + flat.size] = flat % store.width
    points = pixel_coords(torch.from_numpy(rows), torch.from_numpy(cols), store.width, store.height)
    return points, torch.ones(max_points), spacing
