"""Tri-plane encoding (EG3D / Convolutional Occupancy Networks style).

Three axis-aligned feature planes (xy, xz, yz), each a dense R x R grid of
vertices with C features, read by bilinear interpolation at the point's
projection; the three feature vectors are concatenated. Each plane is a
one-level dense :class:`~rbfield.encodings.grid.MultiresGrid`, so lookups are
twice differentiable with respect to x (needed for eikonal losses).
"""

from __future__ import annotations

import torch
from torch import nn

from rbfield.encodings.grid import MultiresGrid

PLANE_AXES = ((0, 1), (0, 2), (1, 2))


def triplane_param_count(resolution: int, channels: int) -> int:
    """Trainable parameters of a tri-plane with ``resolution`` cells per axis."""
    return 3 * (resolution + 1) ** 2 * channels


class TriPlane(nn.Module):
    """Three feature planes over [0, 1]^3.

    Args:
        resolution: cells per plane axis (R + 1 vertices).
        channels: C features per plane.
        init_scale: features start uniform in [-init_scale, init_scale].

    Input (P, 3) in [0, 1]^3; output (P, 3 C).

    Example:
        >>> import torch
        >>> TriPlane(resolution=16, channels=4)(torch.rand(5, 3)).shape
        torch.Size([5, 12])
    """

    def __init__(self, resolution: int, channels: int, init_scale: float = 1e-4):
        super().__init__()
        rows_log2 = max(1, ((resolution + 1) ** 2 - 1).bit_length())  # dense: the table fits every vertex
        self.planes = nn.ModuleList(
            MultiresGrid(2, 1, channels, rows_log2, resolution, resolution, init_scale) for _ in PLANE_AXES
        )
        self.out_dim = 3 * channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([plane(x[:, list(axes)]) for plane, axes in zip(self.planes, PLANE_AXES)], dim=1)
