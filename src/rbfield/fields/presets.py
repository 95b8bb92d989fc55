"""Builders of the image and SDF presets: each returns the largest field of its family within a budget.

Every builder takes the signal's :class:`~rbfield.spec.SignalSpec`, a budget
of *trainable* parameters and its settings dataclass, and returns
``(encoding, decoder, learning_rates)``; :func:`rbfield.fields.build_field`
wraps them in a :class:`~rbfield.fields.field.Field`. Frozen tensors (RBF
centres and shapes, random Fourier matrices) are extra and reported by
:meth:`~rbfield.fields.field.FieldBase.param_counts`.
"""

from __future__ import annotations

import math

from torch import nn

from rbfield.decoders import MLP, Siren, mlp_param_count
from rbfield.encodings import (
    AdaptiveRBF,
    Concatenation,
    FourierFeatures,
    MultiresGrid,
    ScaledCoordinates,
    TriPlane,
)
from rbfield.encodings.grid import grid_layout
from rbfield.encodings.planes import triplane_param_count
from rbfield.errors import RbfieldError
from rbfield.fields.settings import (
    FourierSettings,
    HashGridSettings,
    NeuRBFSettings,
    SirenSettings,
    TriPlaneSettings,
)
from rbfield.spec import SignalSpec

Built = tuple[nn.Module, nn.Module, dict[str, float]]


def too_small(preset: str, budget: int, needed: int) -> RbfieldError:
    """The one error for a budget below a preset's smallest field."""
    return RbfieldError(
        f"a budget of {budget} trainable parameters is too small for field {preset!r} on this "
        f"signal; it needs at least {needed} (try --params {needed})"
    )


def largest_fitting(cost, low: int, high: int, budget: int) -> int:
    """The largest n in [low, high] with ``cost(n) <= budget`` (``cost`` non-decreasing; ``cost(low)`` fits)."""
    while low < high:
        middle = (low + high + 1) // 2
        if cost(middle) <= budget:
            low = middle
        else:
            high = middle - 1
    return low


#: Fewest rows per level of a grid table; most, as a multiple of 8 (2**21 eighths) or as 2**T.
SMALLEST_TABLE_ROWS = 16
LARGEST_TABLE_LOG2 = 24


def largest_table_rows(cost, budget: float, power_of_two: bool) -> int:
    """The most rows per level of a grid table, a power of two or a multiple of 8 (as tiny-cuda-nn aligns
    its tables), whose ``cost(rows)`` (non-decreasing) stays within ``budget``; the smallest table when
    none does (the caller checks)."""
    if power_of_two:
        low, high = SMALLEST_TABLE_ROWS.bit_length() - 1, LARGEST_TABLE_LOG2
        return 2 ** largest_fitting(lambda log2_rows: cost(2**log2_rows), low, high, budget)
    low, high = SMALLEST_TABLE_ROWS // 8, 2**LARGEST_TABLE_LOG2 // 8
    return 8 * largest_fitting(lambda eighths: cost(8 * eighths), low, high, budget)


def _neurbf_layout(spec: SignalSpec, budget: int, s: NeuRBFSettings) -> tuple[int, int]:
    """(rows per level of the grid table, number of RBFs) of a NeuRBF field at ``budget``."""
    finest = s.grid_finest or max(spec.resolution)

    def grid_params(rows: int) -> int:
        return grid_layout(spec.in_dim, s.grid_levels, 0, s.grid_base, finest, rows).total_rows * s.grid_features

    # The largest table that keeps the grid within its share of the budget.
    table_rows = largest_table_rows(grid_params, s.grid_share * budget, s.grid_table_power_of_two)
    decoder_in = s.channels + s.grid_levels * s.grid_features
    decoder_params = mlp_param_count(decoder_in, s.decoder_width, s.decoder_layers, spec.out_dim)
    fixed = grid_params(table_rows) + decoder_params + s.channels  # + the sinusoid phases
    return table_rows, (budget - fixed) // s.channels


def neurbf_smallest_budget(spec: SignalSpec, s: NeuRBFSettings) -> int:
    """The smallest budget this module can vouch for: the grid at its smallest table, or at its share."""
    minimum_kernels = 4 * s.k_neighbours
    finest = s.grid_finest or max(spec.resolution)
    smallest_grid = (
        grid_layout(spec.in_dim, s.grid_levels, 0, s.grid_base, finest, SMALLEST_TABLE_ROWS).total_rows
        * s.grid_features
    )
    decoder_in = s.channels + s.grid_levels * s.grid_features
    rest = mlp_param_count(decoder_in, s.decoder_width, s.decoder_layers, spec.out_dim) + s.channels
    rest += s.channels * minimum_kernels
    # With the smallest table; or, once the table grows, the grid takes at most its share.
    candidates = (smallest_grid + rest, math.ceil(rest / (1.0 - s.grid_share)))
    for budget in (*sorted(candidates), max(candidates)):
        if _neurbf_layout(spec, budget, s)[1] >= minimum_kernels:
            return budget
    raise AssertionError("unreachable: the larger candidate always fits")


def build_neurbf(spec: SignalSpec, budget: int, s: NeuRBFSettings) -> Built:
    """Adaptive RBFs (sinusoid composition) + a hash grid, decoded by an MLP."""
    table_rows, n_kernels = _neurbf_layout(spec, budget, s)
    if n_kernels < 4 * s.k_neighbours:
        raise too_small("neurbf", budget, neurbf_smallest_budget(spec, s))
    finest = s.grid_finest or max(spec.resolution)
    rbf = AdaptiveRBF(
        spec.in_dim,
        n_kernels,
        s.channels,
        kernel=s.kernel,
        k_neighbours=s.k_neighbours,
        frequency_range=s.frequency_range,
        normalize=s.normalize,
        shape_alpha=s.shape_alpha,
        learn_phase=s.learn_phase,
        placement_power=s.placement_power,
    )
    grid = MultiresGrid(spec.in_dim, s.grid_levels, s.grid_features, 0, s.grid_base, finest, table_size=table_rows)
    decoder_in = s.channels + s.grid_levels * s.grid_features
    decoder = MLP(decoder_in, spec.out_dim, s.decoder_width, s.decoder_layers, s.first_layer_frequencies)
    return Concatenation(rbf, grid), decoder, {"encoding": s.lr_features, "decoder": s.lr_decoder}


def build_hash_grid(spec: SignalSpec, budget: int, s: HashGridSettings) -> Built:
    """Instant-NGP: the largest hash table (a multiple of 8 rows, as tiny-cuda-nn aligns it) that fits."""
    finest = max(spec.resolution)
    decoder_params = mlp_param_count(s.levels * s.features, s.decoder_width, s.decoder_layers, spec.out_dim)

    def cost(table_rows: int) -> int:
        rows = grid_layout(spec.in_dim, s.levels, 0, s.base, finest, table_rows).total_rows
        return rows * s.features + decoder_params

    if cost(SMALLEST_TABLE_ROWS) > budget:
        raise too_small("instant-ngp", budget, cost(SMALLEST_TABLE_ROWS))
    table_size = largest_table_rows(cost, budget, power_of_two=False)
    grid = MultiresGrid(spec.in_dim, s.levels, s.features, 0, s.base, finest, table_size=table_size)
    decoder = MLP(s.levels * s.features, spec.out_dim, s.decoder_width, s.decoder_layers)
    return grid, decoder, {"encoding": s.lr_features, "decoder": s.lr_decoder}


def widest_mlp(preset: str, in_dim: int, n_layers: int, out_dim: int, budget: int) -> int:
    """The widest MLP of ``n_layers`` linear layers (width >= 8) that fits the budget."""
    smallest = mlp_param_count(in_dim, 8, n_layers, out_dim)
    if smallest > budget:
        raise too_small(preset, budget, smallest)
    return largest_fitting(lambda width: mlp_param_count(in_dim, width, n_layers, out_dim), 8, 2**16, budget)


def build_siren(spec: SignalSpec, budget: int, s: SirenSettings) -> Built:
    """SIREN on coordinates mapped to [-1, 1]."""
    width = widest_mlp("siren", spec.in_dim, s.layers, spec.out_dim, budget)
    encoding = ScaledCoordinates(spec.in_dim, scale=2.0, shift=-1.0)
    return encoding, Siren(spec.in_dim, spec.out_dim, width, s.layers), {"encoding": s.lr, "decoder": s.lr}


def build_fourier(spec: SignalSpec, budget: int, s: FourierSettings) -> Built:
    """Random Fourier features + a ReLU MLP."""
    width = widest_mlp("ffn", 2 * s.n_features, s.layers, spec.out_dim, budget)
    encoding = FourierFeatures(spec.in_dim, s.n_features, s.sigma)
    decoder = MLP(2 * s.n_features, spec.out_dim, width, s.layers)
    return encoding, decoder, {"encoding": s.lr, "decoder": s.lr}


def build_triplane(spec: SignalSpec, budget: int, s: TriPlaneSettings) -> Built:
    """Three dense planes at the largest resolution that fits (3-D signals only)."""
    if spec.in_dim != 3:
        raise RbfieldError(f"field 'triplane' needs 3-D coordinates; this {spec.task} signal has {spec.in_dim}")
    decoder_params = mlp_param_count(3 * s.channels, s.decoder_width, s.decoder_layers, spec.out_dim)

    def cost(resolution: int) -> int:
        return triplane_param_count(resolution, s.channels) + decoder_params

    if cost(2) > budget:
        raise too_small("triplane", budget, cost(2))
    resolution = largest_fitting(cost, 2, 2**14, budget)
    decoder = MLP(3 * s.channels, spec.out_dim, s.decoder_width, s.decoder_layers)
    return TriPlane(resolution, s.channels), decoder, {"encoding": s.lr_features, "decoder": s.lr_decoder}
