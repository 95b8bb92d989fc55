"""Occupancy grid in the Instant-NGP manner: skip empty space while marching.

A cubic grid of ``resolution**3`` cells over the scene box stores, per cell, a
running estimate of the opacity ``sigma * step`` (an exponential moving average
that keeps the maximum of the decayed old value and a fresh sample taken at a
random point inside the cell). A cell is *occupied* when its value exceeds
``min(mean, threshold)``; marching only places samples in occupied cells.
The values live in buffers, so they are saved with the field and survive resume.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class OccupancyGrid(nn.Module):
    """Binary occupancy over an axis-aligned box.

    Args:
        box_min, box_max: (3,) corners of the scene box.
        resolution: cells per axis.
    """

    def __init__(self, box_min: torch.Tensor, box_max: torch.Tensor, resolution: int = 64):
        super().__init__()
        self.resolution = resolution
        self.register_buffer("box_min", box_min.clone().float(), persistent=False)
        self.register_buffer("box_max", box_max.clone().float(), persistent=False)
        self.register_buffer("opacity", torch.zeros(resolution**3))
        self.register_buffer("occupied", torch.ones(resolution**3, dtype=torch.bool))

    def cell_index(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(P, 3) world points -> flat cell indices (P,) and an inside-the-box mask (P,)."""
        unit = (points - self.box_min) / (self.box_max - self.box_min)
        inside = ((unit >= 0) & (unit <= 1)).all(-1)
        cell = (unit * self.resolution).long().clamp(0, self.resolution - 1)
        flat = (cell[:, 0] * self.resolution + cell[:, 1]) * self.resolution + cell[:, 2]
        return flat, inside

    def query(self, points: torch.Tensor) -> torch.Tensor:
        """(P, 3) world points -> (P,) bool, True where the cell is occupied (False outside the box)."""
        flat, inside = self.cell_index(points)
        return self.occupied[flat] & inside

    def cell_points(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """(R**3, 3) one random point inside each cell (cell order), world units, on the grid's device.
        The jitter is drawn on the CPU from ``generator``, so every device gets the same points."""
        r = self.resolution
        axis = torch.arange(r)
        cells = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3).float()
        unit = (cells + torch.rand(cells.shape, generator=generator)) / r
        return self.box_min + unit.to(self.box_min.device) * (self.box_max - self.box_min)

    @torch.no_grad()
    def update(
        self,
        density: Callable[[torch.Tensor], torch.Tensor],
        step_size: float,
        decay: float = 0.95,
        threshold: float = 0.01,
        generator: torch.Generator | None = None,
        chunk: int = 2**18,
    ) -> None:
        """Refresh every cell from the field's density.

        Args:
            density: (P, 3) world points -> (P,) density (1 / scene unit).
            step_size: marching step (scene units); opacity = density * step_size.
            decay: EMA decay of old values.
            threshold: opacity above which a cell is always occupied.
        """
        points = self.cell_points(generator)
        fresh = torch.cat([density(points[i : i + chunk]) for i in range(0, points.shape[0], chunk)]) * step_size
        self.opacity.copy_(torch.maximum(self.opacity * decay, fresh))
        self.occupied.copy_(self.opacity > min(self.opacity.mean().item(), threshold))
