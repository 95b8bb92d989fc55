"""TensoRF's vector-matrix (VM) factorisation of a 3-D feature grid (Chen et al., ECCV 2022)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class VectorMatrix(nn.Module):
    """TensoRF VM decomposition: for each axis m, C plane x line component products.

    Args:
        components: C per axis.
        resolution: grid points per axis.
        init_scale: standard deviation of the initial values.

    Input (P, 3) in [0, 1]^3; output (P, 3 C) features (axis-major).

    Example:
        >>> import torch
        >>> VectorMatrix(components=4, resolution=16, init_scale=0.1)(torch.rand(5, 3)).shape
        torch.Size([5, 12])
    """

    PLANE_AXES = ((0, 1), (0, 2), (1, 2))
    LINE_AXES = (2, 1, 0)

    def __init__(self, components: int, resolution: int, init_scale: float):
        super().__init__()
        self.planes = nn.Parameter(init_scale * torch.randn(3, components, resolution, resolution))
        self.lines = nn.Parameter(init_scale * torch.randn(3, components, resolution, 1))
        self.out_dim = 3 * components

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = x * 2.0 - 1.0  # grid_sample coordinates; x indexes width, y height
        plane_coords = torch.stack([g[:, list(axes)] for axes in self.PLANE_AXES])  # (3, P, 2)
        line_coords = torch.stack([torch.stack([torch.zeros_like(g[:, a]), g[:, a]], -1) for a in self.LINE_AXES])
        plane = F.grid_sample(self.planes, plane_coords[:, :, None], align_corners=True)  # (3, C, P, 1)
        line = F.grid_sample(self.lines, line_coords[:, :, None], align_corners=True)
        return (plane * line)[..., 0].permute(2, 0, 1).reshape(x.shape[0], self.out_dim)


def vm_param_count(components: int, resolution: int) -> int:
    return 3 * components * (resolution * resolution + resolution)
