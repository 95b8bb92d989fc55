"""Coordinate-network decoders: features (P, in_dim) -> values (P, out_dim).

* :class:`MLP` -- ReLU hidden layers; optionally NeuRBF's sine-composition first
  layer ``h + sin(h * m0)`` (with fixed per-unit ``m0 = 2**linspace(log2 lo,
  log2 hi, width)``) in place of the first ReLU. On the CPU it runs through
  :mod:`rbfield.decoders.chunked_mlp` unless fast paths are off.
* :class:`Siren` -- sine activations ``sin(w0 * (W x + b))`` with SIREN's
  initialisation (Sitzmann et al. 2020): first layer U(-1/n, 1/n), later layers
  U(-sqrt(6/n)/w0, sqrt(6/n)/w0), n the layer's fan-in.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from rbfield.decoders.chunked_mlp import chunked_mlp, plain_mlp
from rbfield.ops import fast_paths_enabled


def mlp_param_count(in_dim: int, width: int, n_layers: int, out_dim: int) -> int:
    """Weights + biases of an MLP with ``n_layers`` linear layers (>= 1)."""
    if n_layers == 1:
        return (in_dim + 1) * out_dim
    return (in_dim + 1) * width + (n_layers - 2) * (width + 1) * width + (width + 1) * out_dim


def _linear_stack(in_dim: int, width: int, n_layers: int, out_dim: int) -> nn.ModuleList:
    sizes = [in_dim] + [width] * (n_layers - 1) + [out_dim]
    return nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))


class MLP(nn.Module):
    """ReLU MLP with an optional sine-composition first layer.

    Args:
        in_dim, out_dim: feature and output widths.
        width: hidden width.
        n_layers: number of linear layers (>= 1).
        first_layer_frequencies: (lo, hi) for NeuRBF's ``h + sin(h * m0)`` after
            the first layer, or None for a plain ReLU there.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        width: int = 64,
        n_layers: int = 3,
        first_layer_frequencies: tuple[float, float] | None = None,
    ):
        super().__init__()
        self.layers = _linear_stack(in_dim, width, n_layers, out_dim)
        if first_layer_frequencies is not None and n_layers > 1:
            low, high = first_layer_frequencies
            m0 = 2.0 ** torch.linspace(math.log2(low), math.log2(high), width)
            self.register_buffer("first_frequencies", m0, persistent=False)
        else:
            self.first_frequencies = None

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features (P, in_dim) -> (P, out_dim)."""
        weights, biases = [layer.weight for layer in self.layers], [layer.bias for layer in self.layers]
        if self._runs_chunked(features):
            return chunked_mlp(features.contiguous(), weights, biases, self.first_frequencies)
        return plain_mlp(features, weights, biases, self.first_frequencies)

    def _runs_chunked(self, features: torch.Tensor) -> bool:
        """True when training (gradients recorded) on float CPU features of the weights' dtype, fast paths on.

        Without gradients (evaluation, rendering) the plain layers are faster: three large
        matrix products, and no activations kept for a backward pass.
        """
        return (
            torch.is_grad_enabled()
            and features.dim() == 2
            and features.device.type == "cpu"
            and features.dtype in (torch.float32, torch.float64)
            and self.layers[0].weight.dtype == features.dtype
            and fast_paths_enabled()
        )


class Siren(nn.Module):
    """SIREN: sine-activated MLP.

    Args:
        in_dim, out_dim: input and output widths.
        width: hidden width.
        n_layers: number of linear layers (>= 2); the last is linear.
        w0: frequency factor of every sine (30 in the paper).
    """

    def __init__(self, in_dim: int, out_dim: int, width: int, n_layers: int = 4, w0: float = 30.0):
        super().__init__()
        self.w0 = w0
        self.layers = _linear_stack(in_dim, width, n_layers, out_dim)
        with torch.no_grad():
            for i, layer in enumerate(self.layers):
                fan_in = layer.in_features
                bound = 1.0 / fan_in if i == 0 else math.sqrt(6.0 / fan_in) / w0
                layer.weight.uniform_(-bound, bound)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        h = features
        for layer in self.layers[:-1]:
            h = torch.sin(self.w0 * layer(h))
        return self.layers[-1](h)
