"""Pixel grids and field coordinates, for whole images or any region of them.

Pixel (row i, column j) of a W x H grid has its centre at
``x = ((j + 0.5) / W, (i + 0.5) / H)`` in [0, 1]^2, the convention of
:mod:`rbfield.signals.image`. A region of an output grid of any size therefore
maps to field coordinates without the rest of the grid being made, so a
100000 x 60000 render can be cut to the part one wants to see.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from rbfield.errors import RbfieldError

#: Points per forward pass when a field renders a region.
RENDER_POINTS = 2**16

#: ``predict(x, y, w, h)`` -> (h, w, C) float values of columns x..x+w-1, rows y..y+h-1.
Predictor = Callable[[int, int, int, int], "np.ndarray | torch.Tensor"]


def pixel_coords(rows: torch.Tensor, cols: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Centres of pixels (rows[b], cols[b]) of a width x height grid: (B, 2) float32 (x, y).

    The same float32 values as :func:`rbfield.signals.image.pixel_centres`.
    """
    xs = (cols.to(torch.float32) + 0.5) / width
    ys = (rows.to(torch.float32) + 0.5) / height
    return torch.stack([xs, ys], dim=1)


def region_coords(x: int, y: int, w: int, h: int, width: int, height: int) -> torch.Tensor:
    """Centres of the pixels of region (x, y, w, h) of a width x height grid:
    (h * w, 2) float32, row-major."""
    rows = torch.arange(y, y + h).repeat_interleave(w)
    cols = torch.arange(x, x + w).repeat(h)
    return pixel_coords(rows, cols, width, height)


def parse_region(text: str, width: int, height: int) -> tuple[int, int, int, int]:
    """'x,y,w,h' -> (x, y, w, h), checked to lie inside a width x height grid.

    Raises:
        RbfieldError: unreadable, empty, or leaving the grid.
    """
    try:
        x, y, w, h = (int(part) for part in text.split(","))
    except ValueError:
        raise RbfieldError(f"cannot read region {text!r}; write x,y,w,h in pixels, e.g. 0,0,1024,768") from None
    if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > width or y + h > height:
        raise RbfieldError(
            f"region {text!r} is not inside the {width}x{height} output; x,y >= 0 and x+w, y+h within it"
        )
    return x, y, w, h


def field_predictor(field: torch.nn.Module, width: int, height: int, points: int = RENDER_POINTS) -> Predictor:
    """A :data:`Predictor` that samples ``field`` on a width x height grid and
    clips to [0, 1], as final metrics and saved reconstructions do.

    The returned function gives (h, w, C) float32 numpy arrays, evaluating at
    most ``points`` coordinates per forward pass.
    """

    device = next(field.parameters()).device

    @torch.no_grad()
    def predict(x: int, y: int, w: int, h: int) -> np.ndarray:
        rows_per_pass = max(1, points // w)
        bands = [
            field(region_coords(x, top, w, min(rows_per_pass, y + h - top), width, height).to(device))
            for top in range(y, y + h, rows_per_pass)
        ]
        return torch.cat(bands).float().clamp(0, 1).reshape(h, w, -1).cpu().numpy()

    return predict
