"""The comparison figure for an image of any size: a downscaled overview
(target | reconstruction | error) and a few full-resolution crops.

The overview averages f x f blocks of the full-resolution target and
prediction (f chosen so the longer side fits ``max_side``), band by band; its
error panel is the mean absolute error of each block at full resolution (mean
over channels), so fine errors are not smoothed away by the downscaling. The
crops are the centre of the image and the windows of highest mean error that
do not overlap it or each other. The figure has a bounded size whatever the
image's, in the style of :func:`rbfield.plots.save_comparison`.
"""

from __future__ import annotations

import math
import os

import numpy as np

from rbfield.io import atomic_write_bytes
from rbfield.plots import _displayable, _figure_bytes, _pyplot
from rbfield.raster.grid import Predictor
from rbfield.raster.store import PixelStore

#: Longest side of the overview, in blocks.
OVERVIEW_SIDE = 1024
#: Side of the full-resolution crops, in pixels.
CROP_SIDE = 256
#: Pixels rendered per band while building the overview.
BAND_PIXELS = 2**20

Box = tuple[int, int, int, int]


def _block_means(band: np.ndarray, factor: int) -> np.ndarray:
    """(h, w, C) -> (ceil(h/f), ceil(w/f), C) means of f x f blocks (cut blocks at the edges)."""
    h, w, channels = band.shape
    rows, cols = math.ceil(h / factor), math.ceil(w / factor)
    padded = np.zeros((rows * factor, cols * factor, channels), np.float64)
    padded[:h, :w] = band
    counts = np.zeros((rows * factor, cols * factor), np.float64)
    counts[:h, :w] = 1
    sums = padded.reshape(rows, factor, cols, factor, channels).sum(axis=(1, 3))
    return sums / counts.reshape(rows, factor, cols, factor).sum(axis=(1, 3))[:, :, None]


def overview(store: PixelStore, predict: Predictor, max_side: int = OVERVIEW_SIDE):
    """Block means of target and prediction, and each block's mean absolute error.

    Returns:
        target (h, w, C), prediction (h, w, C), error (h, w), all float64,
        and the block side f in full-resolution pixels.
    """
    factor = max(1, math.ceil(max(store.width, store.height) / max_side))
    band_rows = factor * max(1, BAND_PIXELS // (store.width * factor))
    targets, predictions, errors = [], [], []
    for top in range(0, store.height, band_rows):
        rows = min(band_rows, store.height - top)
        target = store.read_float(0, top, store.width, rows)
        prediction = np.asarray(predict(0, top, store.width, rows), dtype=np.float32)
        targets.append(_block_means(target, factor))
        predictions.append(_block_means(prediction, factor))
        errors.append(_block_means(np.abs(prediction - target).mean(axis=2, keepdims=True), factor)[:, :, 0])
    return np.concatenate(targets), np.concatenate(predictions), np.concatenate(errors), factor


def choose_crops(error: np.ndarray, factor: int, width: int, height: int, count: int = 3, side: int = CROP_SIDE):
    """The centre crop, then the windows of highest mean block error that overlap no chosen crop.

    Args:
        error: (h, w) block errors from :func:`overview`; factor: block side.
        width, height: the full image; count: crops wanted; side: crop side.

    Returns:
        Up to ``count`` boxes (x, y, w, h) in full-resolution pixels.
    """
    from scipy.ndimage import uniform_filter

    w, h = min(side, width), min(side, height)
    boxes = [((width - w) // 2, (height - h) // 2, w, h)]
    window = max(1, round(side / factor))
    smoothed = uniform_filter(error, size=window, mode="nearest")
    for flat in np.argsort(smoothed, axis=None)[::-1]:
        if len(boxes) >= count:
            break
        row, col = divmod(int(flat), error.shape[1])
        x = min(max(int((col + 0.5) * factor) - w // 2, 0), width - w)
        y = min(max(int((row + 0.5) * factor) - h // 2, 0), height - h)
        if all(x + w <= bx or bx + bw <= x or y + h <= by or by + bh <= y for bx, by, bw, bh in boxes):
            boxes.append((x, y, w, h))
    return boxes[:count]


def save_overview(
    path: str | os.PathLike,
    store: PixelStore,
    predict: Predictor,
    title: str,
    max_side: int = OVERVIEW_SIDE,
    crops: int = 3,
    crop_side: int = CROP_SIDE,
) -> list[Box]:
    """Write the overview-and-crops comparison figure as a PNG.

    Args:
        path: the PNG; store: the target; predict: (x, y, w, h) -> (h, w, C) in [0, 1].
        title: the figure's title.
        max_side: longest overview side in blocks; crops: how many crops; crop_side: their side.

    Returns:
        The crops' boxes (x, y, w, h), in the order shown.
    """
    plt = _pyplot()
    target, prediction, error, factor = overview(store, predict, max_side)
    boxes = choose_crops(error, factor, store.width, store.height, crops, crop_side)
    grey = "gray" if store.channels in (1, 2) else None
    ratios = [target.shape[0] / target.shape[1]] + [1.0] * len(boxes)
    figure, axes = plt.subplots(
        1 + len(boxes), 3, figsize=(13, 3.6 * sum(ratios) + 0.6), gridspec_kw={"height_ratios": ratios}, squeeze=False
    )
    block = f"{factor}x{factor} blocks" if factor > 1 else "pixels"
    axes[0, 0].imshow(_displayable(target), cmap=grey, vmin=0, vmax=1)
    axes[0, 0].set_title(f"target ({store.width}x{store.height}, {block})")
    axes[0, 1].imshow(_displayable(prediction), cmap=grey, vmin=0, vmax=1)
    axes[0, 1].set_title("reconstruction")
    shown = axes[0, 2].imshow(np.clip(error * 10, 0, 1), cmap="inferno", vmin=0, vmax=1)
    axes[0, 2].set_title(f"mean |error| x 10 over {block}")
    figure.colorbar(shown, ax=axes[0, 2], fraction=0.046)
    for number, (x, y, w, h) in enumerate(boxes, start=1):
        for axis in axes[0, :2]:
            axis.add_patch(
                plt.Rectangle(
                    (x / factor - 0.5, y / factor - 0.5),
                    w / factor,
                    h / factor,
                    fill=False,
                    edgecolor="cyan",
                    linewidth=1,
                )
            )
            axis.text(x / factor, y / factor, str(number), color="cyan", va="bottom")
        crop_target = store.read_float(x, y, w, h)
        crop_prediction = np.asarray(predict(x, y, w, h), dtype=np.float32)
        kind = "centre" if number == 1 else "high error"
        axes[number, 0].imshow(_displayable(crop_target), cmap=grey, vmin=0, vmax=1)
        axes[number, 0].set_title(f"crop {number} ({kind}): x={x}, y={y}, {w}x{h}, full resolution")
        axes[number, 1].imshow(_displayable(crop_prediction), cmap=grey, vmin=0, vmax=1)
        crop_error = np.abs(crop_prediction - crop_target).mean(axis=2)
        axes[number, 2].imshow(np.clip(crop_error * 10, 0, 1), cmap="inferno", vmin=0, vmax=1)
        axes[number, 2].set_title("|error| x 10")
    for axis in axes.flat:
        axis.axis("off")
    figure.suptitle(title)
    atomic_write_bytes(path, _figure_bytes(figure))
    return boxes
