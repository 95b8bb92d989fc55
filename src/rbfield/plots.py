"""PNG figures a person can open: side-by-side comparison and training curves."""

from __future__ import annotations

import io
import os

import numpy as np

from rbfield.io import atomic_write_bytes


def _figure_bytes(figure) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _displayable(pixels: np.ndarray) -> np.ndarray:
    """(H, W, C) -> something imshow shows: grey as 2-D, RGBA/RGB as is, 2 channels as grey."""
    pixels = np.clip(pixels, 0, 1)
    if pixels.shape[2] in (1, 2):
        return pixels[:, :, 0]
    return pixels


def save_comparison(path: str | os.PathLike, target: np.ndarray, prediction: np.ndarray, title: str) -> None:
    """Target | reconstruction | per-pixel absolute error (mean over channels, x10)."""
    plt = _pyplot()
    error = np.abs(prediction - target).mean(axis=2)
    figure, axes = plt.subplots(1, 3, figsize=(13, 4.6))
    grey = "gray" if target.shape[2] in (1, 2) else None
    axes[0].imshow(_displayable(target), cmap=grey, vmin=0, vmax=1)
    axes[0].set_title("target")
    axes[1].imshow(_displayable(prediction), cmap=grey, vmin=0, vmax=1)
    axes[1].set_title("reconstruction")
    shown = axes[2].imshow(np.clip(error * 10, 0, 1), cmap="inferno", vmin=0, vmax=1)
    axes[2].set_title("|error| x 10")
    figure.colorbar(shown, ax=axes[2], fraction=0.046)
    for axis in axes:
        axis.axis("off")
    figure.suptitle(title)
    atomic_write_bytes(path, _figure_bytes(figure))


def save_curves(path: str | os.PathLike, curves: dict[str, list[dict]], metric: str = "psnr", x: str = "step") -> None:
    """One line per run: ``metric`` against ``x`` from each run's history."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for label, history in curves.items():
        axis.plot([h[x] for h in history], [h[metric] for h in history], marker=".", label=label)
    axis.set_xlabel("training seconds" if x == "seconds" else x)
    labels = {"psnr": "PSNR (dB)", "psnr_subset": "PSNR on a fixed pixel subset (dB)"}
    axis.set_ylabel(labels.get(metric, metric))
    axis.grid(alpha=0.3)
    axis.legend()
    atomic_write_bytes(path, _figure_bytes(figure))
