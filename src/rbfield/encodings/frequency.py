"""Frequency encodings of coordinates.

* :class:`PositionalEncoding` -- NeRF's axis-aligned octave encoding
  (Mildenhall et al. 2020): ``[x, sin(2^k pi x), cos(2^k pi x)]``.
* :class:`FourierFeatures` -- random Fourier features (Tancik et al. 2020):
  ``[sin(2 pi B x), cos(2 pi B x)]`` with ``B ~ N(0, sigma^2)``, fixed.
* :func:`frequency_encoding` -- TensoRF's view-direction encoding
  ``[x, sin(2^k x), cos(2^k x)]`` (no factor pi), as a plain function.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class PositionalEncoding(nn.Module):
    """NeRF positional encoding.

    Args:
        in_dim: coordinate dimension d.
        n_frequencies: number of octaves K (frequencies 2^0 .. 2^(K-1), times pi).
        include_input: also pass the raw coordinates through.

    Input ``x``: (P, d) float. Output: (P, out_dim) with
    ``out_dim = d * (2K + include_input)``.

    Example:
        >>> import torch
        >>> PositionalEncoding(3, n_frequencies=4)(torch.rand(6, 3)).shape
        torch.Size([6, 27])
    """

    def __init__(self, in_dim: int, n_frequencies: int, include_input: bool = True):
        super().__init__()
        self.in_dim = in_dim
        self.include_input = include_input
        self.register_buffer("frequencies", math.pi * 2.0 ** torch.arange(n_frequencies, dtype=torch.float32))
        self.out_dim = in_dim * (2 * n_frequencies + int(include_input))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        angles = (x[:, :, None] * self.frequencies).flatten(1)  # (P, d*K)
        parts = [torch.sin(angles), torch.cos(angles)]
        if self.include_input:
            parts.insert(0, x)
        return torch.cat(parts, dim=1)


class FourierFeatures(nn.Module):
    """Random Fourier features with a fixed Gaussian frequency matrix.

    Args:
        in_dim: coordinate dimension d.
        n_features: number of random frequencies M (output has 2M channels).
        sigma: standard deviation of the frequencies, in cycles per unit of the
            input domain (Tancik et al. use ~10 for images on [0, 1]^2).
        seed: seed for drawing B, so a field is rebuilt identically on load.

    Input ``x``: (P, d). Output: (P, 2M).

    Example:
        >>> import torch
        >>> FourierFeatures(2, n_features=16, sigma=10.0)(torch.rand(4, 2)).shape
        torch.Size([4, 32])
    """

    def __init__(self, in_dim: int, n_features: int, sigma: float, seed: int = 0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        matrix = torch.randn(in_dim, n_features, generator=generator) * sigma
        self.register_buffer("matrix", matrix)
        self.out_dim = 2 * n_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        angles = 2.0 * math.pi * (x @ self.matrix)
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def frequency_encoding(x: torch.Tensor, n_frequencies: int) -> torch.Tensor:
    """(P, D) -> (P, D + 2 D n): x, sin(2^k x), cos(2^k x) for k < n.

    Example:
        >>> import torch
        >>> frequency_encoding(torch.rand(4, 3), 2).shape
        torch.Size([4, 15])
    """
    scaled = x[..., None, :] * (2.0 ** torch.arange(n_frequencies, dtype=x.dtype))[:, None]
    return torch.cat([x, torch.sin(scaled).flatten(-2), torch.cos(scaled).flatten(-2)], dim=-1)
