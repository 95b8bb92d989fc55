"""Multiresolution grid encoding with Instant-NGP semantics (Mueller et al. 2022).

Level ``l`` (0-based) has resolution ``N_l = floor(N_min * b**l)`` cells per axis,
with growth factor ``b = exp((ln N_max - ln N_min) / (L - 1))``, so it has
``N_l + 1`` vertices per axis. A level whose ``(N_l + 1)**d`` vertices fit in the
table of ``2**T`` rows is indexed densely (row-major, axis 0 fastest); a larger
level is hashed with ``XOR_i (v_i * pi_i) mod 2**T`` using the primes below
(a table of any other size S uses ``mod S``, as tiny-cuda-nn does). Each
row holds F features; a query point gets the d-linear interpolation of its
cell's ``2**d`` corner rows, per level, concatenated over levels.

Coordinates are in ``[0, 1]^d``; points outside are clamped to the boundary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rbfield.ops import fast_paths_enabled, numba_kernels, point_chunks

#: Instant-NGP's spatial-hash primes; the first is 1 for cache coherence.
HASH_PRIMES = (1, 2654435761, 805459861, 3674653429)


@dataclass(frozen=True)
class GridLayout:
    """Sizes of every level of a multiresolution grid.

    Attributes:
        resolutions: cells per axis, one per level.
        table_sizes: rows per level: ``min((N_l+1)**d, 2**T)``.
        hashed: whether each level is hashed (True) or dense (False).
    """

    resolutions: tuple[int, ...]
    table_sizes: tuple[int, ...]
    hashed: tuple[bool, ...]

    @property
    def total_rows(self) -> int:
        return sum(self.table_sizes)


def grid_layout(
    in_dim: int,
    n_levels: int,
    log2_table_size: int,
    base_resolution: int,
    finest_resolution: int,
    table_size: int | None = None,
) -> GridLayout:
    """Level resolutions and table sizes, without allocating anything.

    ``table_size``, when given, caps the rows per level instead of ``2**log2_table_size``.
    """
    cap = table_size if table_size is not None else 2**log2_table_size
    if n_levels == 1:
        growth = 1.0
    else:
        growth = math.exp((math.log(finest_resolution) - math.log(base_resolution)) / (n_levels - 1))
    resolutions, sizes, hashed = [], [], []
    for level in range(n_levels):
        # The small epsilon keeps e.g. 16 * 2.0**3 from flooring to 127.
        resolution = max(1, int(math.floor(base_resolution * growth**level + 1e-6)))
        dense_rows = (resolution + 1) ** in_dim
        resolutions.append(resolution)
        sizes.append(min(dense_rows, cap))
        hashed.append(dense_rows > cap)
    return GridLayout(tuple(resolutions), tuple(sizes), tuple(hashed))


def corner_offsets(in_dim: int) -> torch.Tensor:
    """The 2**d binary corner offsets of a unit cell, (2**d, d) int64, axis 0 fastest."""
    corners = torch.arange(2**in_dim)
    return torch.stack([(corners >> axis) & 1 for axis in range(in_dim)], dim=1)


def grid_lookup_reference(
    x: torch.Tensor,
    table: torch.Tensor,
    resolutions: torch.Tensor,
    offsets: torch.Tensor,
    table_sizes: torch.Tensor,
    hashed: torch.Tensor,
) -> torch.Tensor:
    """d-linear interpolation of a multiresolution (dense or hashed) grid,
    written as one broadcast over (points, levels, corners, axes).

    The reference twin of :func:`grid_lookup`.

    Args:
        x: (P, d) points in [0, 1]^d (clamped).
        table: (R, F) feature rows of all levels stacked.
        resolutions: (L,) int64 cells per axis per level.
        offsets: (L,) int64 first row of each level in ``table``.
        table_sizes: (L,) int64 rows per level.
        hashed: (L,) bool, hashed or dense indexing per level.

    Returns:
        (P, L * F) features, level-major.
    """
    n_points, in_dim = x.shape
    n_levels = resolutions.shape[0]
    n_features = table.shape[1]
    if n_points == 0:
        return x.new_zeros(0, n_levels * n_features)
    res_float = resolutions.to(x.dtype)
    pos = x.clamp(0.0, 1.0)[:, None, :] * res_float[None, :, None]  # (P, L, d)
    cell = torch.minimum(pos.floor().long(), (resolutions - 1)[None, :, None])
    frac = pos - cell.to(x.dtype)  # (P, L, d) in [0, 1]
    corners = corner_offsets(in_dim).to(x.device)  # (C, d)
    vertex = cell[:, :, None, :] + corners[None, None]  # (P, L, C, d)

    # Dense index: row-major with axis 0 fastest.
    strides = (resolutions[:, None] + 1) ** torch.arange(in_dim, device=x.device)[None, :]
    dense_index = (vertex * strides[None, :, None, :]).sum(-1)  # (P, L, C)
    # Hashed index: XOR of coordinate * prime, modulo the table size.
    primes = torch.tensor(HASH_PRIMES[:in_dim], dtype=torch.int64, device=x.device)
    products = vertex * primes
    hash_index = products[..., 0]
    for axis in range(1, in_dim):
        hash_index = hash_index ^ products[..., axis]
    hash_index = hash_index % table_sizes[None, :, None]
    index = torch.where(hashed[None, :, None], hash_index, dense_index) + offsets[None, :, None]

    # Interpolation weights: product over axes of frac or (1 - frac).
    corner_is_upper = corners.to(torch.bool)[None, None]  # (1, 1, C, d)
    axis_weights = torch.where(corner_is_upper, frac[:, :, None, :], 1.0 - frac[:, :, None, :])
    weights = axis_weights.prod(-1)  # (P, L, C)

    rows = F.embedding(index, table)  # (P, L, C, F)
    features = (rows * weights[..., None]).sum(2)  # (P, L, F)
    return features.reshape(n_points, n_levels * n_features)


def _level_group_lookup(
    x_by_axis: torch.Tensor,
    table: torch.Tensor,
    resolutions: torch.Tensor,
    offsets: torch.Tensor,
    table_sizes: torch.Tensor,
    is_hashed: bool,
) -> torch.Tensor:
    """Interpolate a run of levels that share one indexing scheme.

    Args:
        x_by_axis: (d, P) clamped points, one contiguous row per axis.
        resolutions, offsets, table_sizes: (Lg,) of the group's levels.
        is_hashed: the group's scheme.

    Returns:
        (P, Lg, F).
    """
    in_dim, n_points = x_by_axis.shape
    res_float = resolutions.to(x_by_axis.dtype)
    pos = x_by_axis[:, :, None] * res_float  # (d, P, Lg), contiguous per axis
    cell = torch.minimum(pos.floor(), res_float - 1)
    frac = pos - cell
    cell = cell.long()
    # Per axis, the index term and weight of the lower and the upper vertex.
    terms, weights = [], []
    for axis in range(in_dim):
        if is_hashed:
            low = cell[axis] * HASH_PRIMES[axis]
            terms.append((low, low + HASH_PRIMES[axis]))
        else:
            stride = (resolutions + 1) ** axis
            low = cell[axis] * stride
            terms.append((low, low + stride))
        weights.append((1.0 - frac[axis], frac[axis]))
    features = None
    for corner in range(2**in_dim):
        bits = [(corner >> axis) & 1 for axis in range(in_dim)]
        index = terms[0][bits[0]]
        weight = weights[0][bits[0]]
        for axis in range(1, in_dim):
            term = terms[axis][bits[axis]]
            index = index ^ term if is_hashed else index + term
            weight = weight * weights[axis][bits[axis]]
        if is_hashed:
            index = index % table_sizes
        index = index + offsets
        rows = table.index_select(0, index.reshape(-1)).view(*index.shape, table.shape[1])
        contribution = rows * weight[..., None]
        features = contribution if features is None else features + contribution
    return features


def _runs(flags: list[bool]) -> list[tuple[int, int, bool]]:
    """Maximal runs of equal flags as (start, stop, flag)."""
    runs = []
    for i, flag in enumerate(flags):
        if runs and runs[-1][2] == flag:
            runs[-1] = (runs[-1][0], i + 1, flag)
        else:
            runs.append((i, i + 1, flag))
    return runs


class _CompiledGridLookup(torch.autograd.Function):
    """The fused Numba kernels (d = 2 or 3); differentiable in ``table`` only
    (callers pass points that need no gradient)."""

    @staticmethod
    def forward(ctx, x, table, resolutions, offsets, table_sizes, hashed, kernels):
        n_points, in_dim = x.shape
        out = torch.empty(n_points, resolutions.shape[0] * table.shape[1], dtype=table.dtype)
        one = x.numpy().dtype.type(1)
        resolution_floats = resolutions.to(x.dtype)
        inverse_sizes = 1.0 / table_sizes.to(torch.float64)
        primes = torch.tensor(HASH_PRIMES[:in_dim], dtype=torch.int64)
        n_chunks = point_chunks(n_points)
        level_arrays = [a.numpy() for a in (resolutions, offsets, table_sizes, inverse_sizes, hashed, primes)]
        kernels.grid_forward(
            x.numpy(), table.detach().numpy(), resolution_floats.numpy(), one, *level_arrays, out.numpy(), n_chunks
        )
        ctx.save_for_backward(x)
        ctx.call = (kernels, resolution_floats.numpy(), one, level_arrays)
        ctx.table_shape = table.shape
        return out

    @staticmethod
    def backward(ctx, grad_out):
        if not ctx.needs_input_grad[1]:
            return (None,) * 7
        (x,) = ctx.saved_tensors
        kernels, resolution_floats, one, level_arrays = ctx.call
        grad_table = torch.zeros(ctx.table_shape, dtype=grad_out.dtype)
        kernels.grid_table_grad(
            x.numpy(), resolution_floats, one, *level_arrays, grad_out.contiguous().numpy(), grad_table.numpy()
        )
        return None, grad_table, None, None, None, None, None


def _compiled_kernels_for(x: torch.Tensor, table: torch.Tensor):
    """The Numba kernel module when it applies to these tensors (CPU, d = 2 or 3,
    no gradient to ``x``, float32/64), else None."""
    if x.requires_grad or x.device.type != "cpu" or table.device.type != "cpu" or x.shape[1] not in (2, 3):
        return None
    if x.dtype != table.dtype or table.dtype not in (torch.float32, torch.float64):
        return None
    return numba_kernels()


def grid_lookup(
    x: torch.Tensor,
    table: torch.Tensor,
    resolutions: torch.Tensor,
    offsets: torch.Tensor,
    table_sizes: torch.Tensor,
    hashed: torch.Tensor,
) -> torch.Tensor:
    """Fast path of :func:`grid_lookup_reference` (same arguments and result).

    On the CPU, for 2-D and 3-D points that need no gradient (fitting
    images, SDFs, radiance fields), fused Numba kernels do the forward pass
    in one sweep over the points and the table gradient in one sweep per
    level. Otherwise (other dimensions; points that need gradients, e.g. a
    user's own normal or eikonal terms; other devices; no Numba) PyTorch
    works corner by corner on contiguous (P, levels) tensors, computes only
    the index scheme each run of levels uses, and gathers with
    ``index_select``, whose backward is a plain ``index_add_``.
    """
    if not fast_paths_enabled():
        return grid_lookup_reference(x, table, resolutions, offsets, table_sizes, hashed)
    n_points = x.shape[0]
    n_levels, n_features = resolutions.shape[0], table.shape[1]
    if n_points == 0:
        return x.new_zeros(0, n_levels * n_features)
    kernels = _compiled_kernels_for(x, table)
    if kernels is not None:
        return _CompiledGridLookup.apply(
            x.clamp(0.0, 1.0).contiguous(), table, resolutions, offsets, table_sizes, hashed, kernels
        )
    x_by_axis = x.clamp(0.0, 1.0).t().contiguous()
    groups = []
    for start, stop, is_hashed in _runs(hashed.tolist()):
        levels = slice(start, stop)
        groups.append(
            _level_group_lookup(x_by_axis, table, resolutions[levels], offsets[levels], table_sizes[levels], is_hashed)
        )
    return torch.cat(groups, dim=1).reshape(n_points, n_levels * n_features)


class MultiresGrid(nn.Module):
    """Instant-NGP multiresolution grid encoding (dense levels + hashed levels).

    Args:
        in_dim: coordinate dimension d (2 or 3; up to 4 supported by the primes).
        n_levels: L.
        n_features: F, features per level.
        log2_table_size: T; each level has at most 2**T rows.
        table_size: optional cap on rows per level instead of 2**T (any size;
            hashed levels then use ``mod table_size``).
        base_resolution: N_min, cells per axis at the coarsest level.
        finest_resolution: N_max, cells per axis at the finest level.
        init_scale: rows are initialised uniformly in [-init_scale, init_scale].

    Input ``x``: (P, d) in [0, 1]^d. Output: (P, L * F).

    Example:
        >>> import torch
        >>> grid = MultiresGrid(2, n_levels=4, n_features=2, log2_table_size=10,
        ...                     base_resolution=8, finest_resolution=64)
        >>> grid(torch.rand(5, 2)).shape
        torch.Size([5, 8])
    """

    def __init__(
        self,
        in_dim: int,
        n_levels: int,
        n_features: int,
        log2_table_size: int,
        base_resolution: int,
        finest_resolution: int,
        init_scale: float = 1e-4,
        table_size: int | None = None,
    ):
        super().__init__()
        if in_dim > len(HASH_PRIMES):
            raise ValueError(f"grid encoding supports up to {len(HASH_PRIMES)} dimensions")
        self.in_dim = in_dim
        self.layout = grid_layout(in_dim, n_levels, log2_table_size, base_resolution, finest_resolution, table_size)
        sizes = torch.tensor(self.layout.table_sizes, dtype=torch.int64)
        self.register_buffer("resolutions", torch.tensor(self.layout.resolutions), persistent=False)
        self.register_buffer("table_sizes", sizes, persistent=False)
        self.register_buffer("offsets", torch.cumsum(sizes, 0) - sizes, persistent=False)
        self.register_buffer("hashed", torch.tensor(self.layout.hashed), persistent=False)
        self.table = nn.Parameter(torch.empty(self.layout.total_rows, n_features).uniform_(-init_scale, init_scale))
        self.out_dim = n_levels * n_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grid_lookup(x, self.table, self.resolutions, self.offsets, self.table_sizes, self.hashed)
