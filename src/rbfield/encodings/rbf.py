"""Adaptive radial basis function encoding (NeuRBF, Chen et al. ICCV 2023).

Each of N kernels has a centre ``c_i``, a shape and a feature vector ``w_i`` of C
channels. A query point x uses its k nearest kernels (by centre):

* kernel value ``phi_i(x)``:
    - ``inverse_quadric``: ``1 / (1 + (x-c)^T K (x-c))``, K an anisotropic
      (full, symmetric) inverse covariance;
    - ``gaussian``: ``exp(-0.5 (x-c)^T K (x-c))``;
    - ``tent``: ``prod_j clamp(1 - |x_j - c_j| s_j, 0, 1)``, s per-axis scales;
* optional normalization ``phi_i / sum_k phi_k`` with the denominator detached;
* multi-frequency sinusoid composition, channel c:
  ``g_c(x) = sum_i w_ic sin(phi_i(x) m_c + b_c)``, with fixed
  ``m = 2**linspace(log2 m_lo, log2 m_hi, C)`` and the learnable phase ``b``
  of the paper's Eq. 5 (initialised to 0; the released code has no ``b``).

Centres and shapes are frozen by default, as in every published config;
``train_geometry=True`` trains them too. For a fixed set of query points (the
training pixels) the neighbour lists and kernel values are computed once and
cached while the geometry is frozen.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from rbfield.encodings.neighbours import NeighbourIndex
from rbfield.encodings.rbf_init import initial_rbf_geometry
from rbfield.ops import fast_paths_enabled
from rbfield.ops.rbf_compose import (
    angle_tables,
    compose_fixed_angles,
    compose_reference,
)

KERNELS = ("inverse_quadric", "gaussian", "tent")


def kernel_values(kernel: str, x: torch.Tensor, centres: torch.Tensor, shapes: torch.Tensor) -> torch.Tensor:
    """Unnormalized kernel values of each point against its gathered kernels.

    Args:
        kernel: one of :data:`KERNELS`.
        x: (P, d) points.
        centres: (P, k, d) centres of each point's kernels.
        shapes: (P, k, d, d) inverse covariances, or (P, k, d) tent scales.

    Returns:
        (P, k) kernel values in [0, 1].
    """
    delta = x[:, None, :] - centres
    if kernel == "tent":
        return (1.0 - delta.abs() * shapes).clamp(0.0, 1.0).prod(-1)
    quadratic = torch.einsum("pkd,pkde,pke->pk", delta, shapes, delta)
    if kernel == "inverse_quadric":
        return 1.0 / (1.0 + quadratic)
    return torch.exp(-0.5 * quadratic)


class AdaptiveRBF(nn.Module):
    """NeuRBF adaptive RBF encoding with sinusoid composition.

    Args:
        in_dim: coordinate dimension d.
        n_kernels: N.
        n_channels: C, feature channels per kernel (= output width).
        kernel: one of :data:`KERNELS`.
        k_neighbours: k nearest kernels per point (clamped to N).
        frequency_range: (m_lo, m_hi) of the sinusoid composition, or None to
            use ``phi * w`` without sinusoids.
        normalize: divide by the (detached) sum of the k kernel values.
        learn_phase: train the phase b (Eq. 5); otherwise b stays 0.
        train_geometry: train centres and shapes too.
        shape_alpha: covariance divisor used by :meth:`initialize`.
        placement_power: the exponent the signal raises its placement weights to
            before :meth:`initialize` (1: the paper's weights); see
            :meth:`rbfield.fields.field.FieldBase.initialize`.
        init_scale: weights start uniform in [-init_scale, init_scale].

    Input ``x``: (P, d) in the field's domain ([0, 1]^d). Output: (P, C).
    Before :meth:`initialize`, centres sit on a regular lattice.

    Example:
        >>> import torch
        >>> rbf = AdaptiveRBF(2, n_kernels=64, n_channels=8, kernel="inverse_quadric",
        ...                   k_neighbours=4, frequency_range=(1.0, 64.0))
        >>> points = torch.rand(500, 2)
        >>> rbf.initialize(points, weights=torch.ones(500), spacing=1 / 32)
        >>> rbf(torch.rand(10, 2)).shape
        torch.Size([10, 8])
    """

    def __init__(
        self,
        in_dim: int,
        n_kernels: int,
        n_channels: int,
        kernel: str = "inverse_quadric",
        k_neighbours: int = 4,
        frequency_range: tuple[float, float] | None = (2.0**-3, 2.0**12),
        normalize: bool = True,
        learn_phase: bool = True,
        train_geometry: bool = False,
        shape_alpha: float = 0.5,
        init_scale: float = 1e-4,
        placement_power: float = 1.0,
    ):
        super().__init__()
        if kernel not in KERNELS:
            raise ValueError(f"unknown kernel {kernel!r}; choose one of {', '.join(KERNELS)}")
        self.in_dim = in_dim
        self.kernel = kernel
        self.k_neighbours = k_neighbours
        self.normalize = normalize
        self.shape_alpha = shape_alpha
        self.placement_power = placement_power
        self.out_dim = n_channels
        centres, spacing = _lattice(n_kernels, in_dim)
        self.centres = nn.Parameter(centres, requires_grad=train_geometry)
        self.shapes = nn.Parameter(
            self._shapes_from_covariance(torch.eye(in_dim).expand(n_kernels, in_dim, in_dim) * (spacing / 2) ** 2),
            requires_grad=train_geometry,
        )
        self.weights = nn.Parameter(torch.empty(n_kernels, n_channels).uniform_(-init_scale, init_scale))
        self.phase = nn.Parameter(torch.zeros(n_channels), requires_grad=learn_phase)
        if frequency_range is None:
            frequencies = torch.zeros(0)
        else:
            low, high = frequency_range
            frequencies = 2.0 ** torch.linspace(math.log2(low), math.log2(high), n_channels)
        self.register_buffer("frequencies", frequencies, persistent=False)
        self._index: NeighbourIndex | None = None
        self._index_key: tuple | None = None
        self._cache: tuple | None = None

    @property
    def n_kernels(self) -> int:
        return self.centres.shape[0]

    @property
    def geometry_frozen(self) -> bool:
        return not (self.centres.requires_grad or self.shapes.requires_grad)

    def _shapes_from_covariance(self, covariance: torch.Tensor) -> torch.Tensor:
        """(N, d, d) covariances -> stored shapes: inverse covariance, or tent scales (N, d)."""
        if self.kernel == "tent":
            # Tent half-width = 2 standard deviations along each axis.
            return 1.0 / (2.0 * covariance.diagonal(dim1=1, dim2=2).sqrt())
        return torch.linalg.inv(covariance)

    @torch.no_grad()
    def initialize(self, points: torch.Tensor, weights: torch.Tensor, spacing: float, seed: int = 0) -> None:
        """Place kernels by weighted k-means over weighted samples of the signal.

        Args:
            points: (M, d) sample positions, M >= N.
            weights: (M,) non-negative importance weights.
            spacing: typical sample spacing (one pixel), the smallest kernel scale.
            seed: seed of the k-means seeding.
        """
        centres, covariance = initial_rbf_geometry(points, weights, self.n_kernels, spacing, self.shape_alpha, seed)
        self.centres.copy_(centres)
        self.shapes.copy_(self._shapes_from_covariance(covariance))

    def neighbours(self, x: torch.Tensor) -> torch.Tensor:
        """(P, min(k, N)) int64 indices of the nearest kernels of each point."""
        key = (self.centres.data_ptr(), self.centres._version, self.centres.device)
        if self._index is None or self._index_key != key:
            self._index = NeighbourIndex(self.centres.detach())
            self._index_key = key
        return self._index.query(x, self.k_neighbours)

    def _neighbour_weights(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, tuple | None]:
        """Neighbour indices (P, k), (normalized) kernel values (P, k), and the
        fast path's angle tables when they may be used (else None).

        In training mode, for a fixed point set (the same tensor, unmodified)
        under frozen geometry, all three are computed once and cached; one-off
        queries (evaluation, rendering) skip the cache and its tables.
        """
        cacheable = self.training and self.geometry_frozen and not x.requires_grad
        geometry_key = (self.centres._version, self.shapes._version)
        if cacheable and self._cache is not None:
            cached_x, cached_version, cached_geometry, index, values, tables = self._cache
            if cached_x is x and cached_version == x._version and cached_geometry == geometry_key:
                return index, values, tables
        index = self.neighbours(x)
        values = kernel_values(self.kernel, x, F.embedding(index, self.centres), self._gather_shapes(index))
        if self.normalize:
            values = values / (values.detach().sum(-1, keepdim=True) + 1e-8)
        tables = None
        if cacheable:
            if self.frequencies.numel() and fast_paths_enabled():
                tables = angle_tables(values, self.frequencies)
            self._cache = (x, x._version, geometry_key, index, values, tables)
        return index, values, tables

    def _gather_shapes(self, index: torch.Tensor) -> torch.Tensor:
        flat = self.shapes.reshape(self.n_kernels, -1)
        return F.embedding(index, flat).reshape(*index.shape, *self.shapes.shape[1:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == 0:
            return x.new_zeros(0, self.out_dim)
        index, values, tables = self._neighbour_weights(x)
        if not self.frequencies.numel():
            return (F.embedding(index, self.weights) * values[..., None]).sum(1)
        if tables is not None:
            return compose_fixed_angles(index, *tables, self.weights, self.phase)
        return compose_reference(index, values, self.weights, self.frequencies, self.phase)


def _lattice(n_points: int, in_dim: int) -> tuple[torch.Tensor, float]:
    """The first n points of a regular lattice over [0, 1]^d, and its spacing."""
    per_axis = max(2, math.ceil(n_points ** (1.0 / in_dim)))
    axis = (torch.arange(per_axis, dtype=torch.float32) + 0.5) / per_axis
    mesh = torch.meshgrid(*([axis] * in_dim), indexing="ij")
    points = torch.stack([m.reshape(-1) for m in mesh], dim=1)[:n_points]
    return points.contiguous(), 1.0 / per_axis
