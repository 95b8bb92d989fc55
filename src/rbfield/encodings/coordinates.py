"""Pass-through encodings: the coordinates themselves, rescaled, and a concatenation."""

from __future__ import annotations

import torch
from torch import nn


class ScaledCoordinates(nn.Module):
    """``x * scale + shift``; e.g. maps [0, 1]^d to [-1, 1]^d for SIREN.

    Input (P, d); output (P, d).
    """

    def __init__(self, in_dim: int, scale: float = 2.0, shift: float = -1.0):
        super().__init__()
        self.scale, self.shift = scale, shift
        self.out_dim = in_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


class Concatenation(nn.Module):
    """Hybrid encoding: the features of several encodings side by side.

    Input (P, d); output (P, sum of the parts' out_dim), in the given order.
    """

    def __init__(self, *parts: nn.Module):
        super().__init__()
        self.parts = nn.ModuleList(parts)
        self.out_dim = sum(part.out_dim for part in parts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([part(x) for part in self.parts], dim=1)
