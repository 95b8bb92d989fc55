"""Field = encoding + decoder, and the named presets that size one to a budget.

Every preset takes a :class:`~rbfield.spec.SignalSpec` and a budget of
*trainable* parameters and returns the largest field of its family that fits.
Frozen tensors (RBF centres and shapes, random Fourier matrices) are extra;
:meth:`Field.param_counts` reports both numbers.

Presets (settings per task in the tables below):

* ``neurbf`` -- adaptive RBFs with sinusoid composition + a small hash grid,
  decoded by a 3-layer, 64-wide MLP whose first layer is ``h + sin(h m0)``
  (DESIGN.md Sec. 2; NeuRBF's released image config).
* ``instant-ngp`` -- 16-level hash grid, 2 features per level, 3-layer 64-wide
  ReLU MLP; the largest table (rows per level, a multiple of 8) that fits.
* ``siren`` -- 4-layer SIREN, width solved for the budget.
* ``ffn`` -- 256 random Fourier features (sigma 10) + 4-layer ReLU MLP.
* ``triplane`` -- three dense feature planes (16 features each, concatenated)
  + 3-layer 64-wide ReLU MLP; the plane resolution is the largest that fits
  (3-D signals only).
"""

from __future__ import annotations

import re
from typing import Callable

import torch
from torch import nn

from rbfield.decoders import MLP, Siren, mlp_param_count
from rbfield.encodings import (
    AdaptiveRBF,
    Concatenation,
    FourierFeatures,
    MultiresGrid,
    ScaledCoordinates,
)
from rbfield.encodings.grid import grid_layout
from rbfield.encodings.planes import TriPlane, triplane_param_count
from rbfield.errors import RbfieldError
from rbfield.spec import SignalSpec

#: NeuRBF settings per task (DESIGN.md Sec. 2 and the released configs).
NEURBF_SETTINGS = {
    "image": dict(
        kernel="inverse_quadric", k_neighbours=4, channels=32, frequency_range=(2.0**-3, 2.0**12),
        normalize=True, shape_alpha=0.5, grid_levels=2, grid_features=2, grid_base=16,
        grid_finest=None, grid_share=0.125, first_layer_frequencies=(1.0, 1000.0),
        lr_decoder=1e-2, lr_features=5e-3, learn_phase=True,
    ),
    # SDF: tent kernel, k = 8, sinusoid frequencies 1..8, a 16-level hash grid
    # with 1 feature per level whose table takes ~55% of the budget (2**15 rows
    # per level at the paper's 856K).
    # Finest grid level 256, not the paper's 2048: with ~1/100 of the paper's
    # training points, the hashed fine levels add collision noise that the fit
    # never averages out, and the RBFs carry the fine detail. 500k, 3,000 steps,
    # 2 threads, MC 512^3, NAE (deg) for finest 2048 / 1024 / 512 / 256 / 128:
    # elephant 4.98 / 4.83 / 4.51 / 4.41 / 4.76, Stanford dragon (vrip, res2)
    # 7.06 / 6.96 / 6.54 / 6.27 / 6.26; 8 levels instead of 16 at 512: dragon 7.21.
    # The tent's smallest half-width is 2 * 0.5 * init spacing (see signals/sdf.py).
    # First-layer m0 in [1, 5], not the paper's [30, 300]: with ~1/100 of the
    # paper's training points, the high first-layer frequencies leave ripples on
    # the surface. 500k, 1,500 steps of 2**14 points, 2 threads, MC 256^3:
    # bunny IoU 0.9811 / NAE 6.43 deg with [30, 300], 0.9921 / 3.18 with [1, 5]
    # (instant-ngp 0.9876 / 4.34); fandisk 0.9796 / 9.44 against 0.9906 / 3.90
    # (instant-ngp 0.9837 / 5.63); the sweep is in bench/results/sdf.md.
    # Learning rate 3e-4, not the paper's 1e-4: the paper trains 20k steps of 2**18
    # points; a CPU fit gets ~1k steps of 2**14, where 1e-4 leaves the far field
    # unlearnt. Measured on bunny00 at 500k, 1000 steps: 1e-4 -> IoU 0.944 (300 steps),
    # 3e-4 -> IoU 0.978 / NAE 8.5, 1e-3 -> IoU 0.965 / NAE 10.5 (bench/results/sdf.md).
    # No learnable phase b (as in the released code): with b != 0 a point whose
    # k nearest tents are all zero still gets sin(b) * sum w, which jumps where
    # the neighbour set changes. Bunny, 500 steps: IoU 0.942 / NAE 31.1 with b,
    # 0.958 / 27.2 without (bench/results/sdf.md).
    "sdf": dict(
        kernel="tent", k_neighbours=8, channels=32, frequency_range=(1.0, 8.0),
        normalize=True, shape_alpha=0.5, grid_levels=16, grid_features=1, grid_base=16,
        grid_finest=256, grid_share=0.55, first_layer_frequencies=(1.0, 5.0),
        lr_decoder=3e-4, lr_features=3e-4, learn_phase=False,
    ),
}

#: Learning rates of the baselines per task: (decoder, features).
BASELINE_LRS = {
    "instant-ngp": {"image": (1e-2, 1e-2), "sdf": (3e-4, 3e-4)},
    "siren": {"image": (1e-4, 1e-4), "sdf": (1e-4, 1e-4)},
    "ffn": {"image": (1e-3, 1e-3), "sdf": (1e-3, 1e-3)},
    "triplane": {"sdf": (3e-4, 3e-4)},
}
TRIPLANE_CHANNELS = 16

DECODER_WIDTH = 64
DECODER_LAYERS = 3


class Field(nn.Module):
    """A neural field: ``decoder(encoding(x))``.

    Args:
        encoding: maps (P, d) coordinates in [0, 1]^d to (P, F) features.
        decoder: maps (P, F) features to (P, out_dim) values.
        config: everything :func:`build_field` needs to rebuild this field
            (preset, spec, budget, seed); saved beside the weights.
        learning_rates: {"encoding": lr, "decoder": lr}.
    """

    def __init__(self, encoding: nn.Module, decoder: nn.Module, config: dict, learning_rates: dict):
        super().__init__()
        self.encoding = encoding
        self.decoder = decoder
        self.config = config
        self.learning_rates = learning_rates

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(P, d) coordinates in [0, 1]^d -> (P, out_dim) values."""
        return self.decoder(self.encoding(x))

    def param_groups(self) -> list[dict]:
        """Optimizer groups with their base learning rates (trainable tensors only)."""
        groups = []
        for name in ("encoding", "decoder"):
            params = [p for p in getattr(self, name).parameters() if p.requires_grad]
            if params:
                groups.append({"name": name, "params": params, "lr": self.learning_rates[name]})
        return groups

    def param_counts(self) -> dict:
        """{"trainable": n, "total": n}: trainable tensors, and every stored tensor."""
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        total = sum(t.numel() for t in self.state_dict().values())
        return {"trainable": int(trainable), "total": int(total)}

    def rbf_encodings(self) -> list[AdaptiveRBF]:
        return [m for m in self.modules() if isinstance(m, AdaptiveRBF)]

    def initialize(self, signal) -> None:
        """Data-driven initialisation (weighted k-means of RBF centres) from a signal.

        ``signal.rbf_init_samples()`` must return (points (M, d), weights (M,), spacing).
        Fields without RBFs need nothing and ignore the call.
        """
        encodings = self.rbf_encodings()
        if not encodings:
            return
        points, weights, spacing = signal.rbf_init_samples()
        for encoding in encodings:
            if encoding.n_kernels > points.shape[0]:
                raise RbfieldError(
                    f"the field has {encoding.n_kernels} RBFs but the signal only "
                    f"{points.shape[0]} samples; use a smaller --params budget"
                )
            encoding.initialize(points, weights, spacing, seed=self.config.get("seed", 0))


def parse_budget(text: str | int) -> int:
    """Parse a parameter budget: 128000, "128k", "1.5M" (k = 1e3, M = 1e6)."""
    if isinstance(text, int):
        return text
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmM]?)\s*", str(text))
    if not match:
        raise RbfieldError(f"cannot read parameter budget {text!r}; write e.g. 128k, 1.5M or 50000")
    scale = {"": 1, "k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6}[match.group(2)]
    return int(float(match.group(1)) * scale)


def _too_small(preset: str, budget: int, needed: int) -> RbfieldError:
    return RbfieldError(
        f"a budget of {budget} trainable parameters is too small for field {preset!r} on this "
        f"signal; it needs at least {needed} (try --params {needed})"
    )


def _settings(table: dict, preset: str, task: str):
    if task not in table:
        raise RbfieldError(f"field {preset!r} has no settings for task {task!r} yet")
    return table[task]


def _build_neurbf(spec: SignalSpec, budget: int) -> tuple[nn.Module, nn.Module, dict]:
    s = _settings(NEURBF_SETTINGS, "neurbf", spec.task)
    finest = s["grid_finest"] or max(spec.resolution)
    features_per_level = s["grid_features"]
    # The largest table (2**T rows) that keeps the grid within its share of the budget.
    log2_table = 4
    while (
        log2_table < 24
        and grid_layout(spec.in_dim, s["grid_levels"], log2_table + 1, s["grid_base"], finest).total_rows
        * features_per_level
        <= s["grid_share"] * budget
    ):
        log2_table += 1
    layout = grid_layout(spec.in_dim, s["grid_levels"], log2_table, s["grid_base"], finest)
    grid_params = layout.total_rows * features_per_level
    channels = s["channels"]
    decoder_in = channels + s["grid_levels"] * features_per_level
    decoder_params = mlp_param_count(decoder_in, DECODER_WIDTH, DECODER_LAYERS, spec.out_dim)
    minimum_kernels = 4 * s["k_neighbours"]
    n_kernels = (budget - grid_params - decoder_params - channels) // channels
    if n_kernels < minimum_kernels:
        raise _too_small("neurbf", budget, grid_params + decoder_params + channels * (1 + minimum_kernels))
    rbf = AdaptiveRBF(
        spec.in_dim, n_kernels, channels, kernel=s["kernel"], k_neighbours=s["k_neighbours"],
        frequency_range=s["frequency_range"], normalize=s["normalize"], shape_alpha=s["shape_alpha"],
        learn_phase=s["learn_phase"],
    )
    grid = MultiresGrid(spec.in_dim, s["grid_levels"], features_per_level, log2_table, s["grid_base"], finest)
    decoder = MLP(decoder_in, spec.out_dim, DECODER_WIDTH, DECODER_LAYERS, s["first_layer_frequencies"])
    return Concatenation(rbf, grid), decoder, {"encoding": s["lr_features"], "decoder": s["lr_decoder"]}


def _build_instant_ngp(spec: SignalSpec, budget: int) -> tuple[nn.Module, nn.Module, dict]:
    levels, features_per_level, base = 16, 2, 16
    finest = max(spec.resolution)
    decoder_params = mlp_param_count(levels * features_per_level, DECODER_WIDTH, DECODER_LAYERS, spec.out_dim)

    def grid_params(table_size: int) -> int:
        return grid_layout(spec.in_dim, levels, 0, base, finest, table_size).total_rows * features_per_level

    # The largest table (a multiple of 8 rows, as tiny-cuda-nn aligns it) that fits.
    smallest, largest = 16, 2**24
    if grid_params(smallest) + decoder_params > budget:
        raise _too_small("instant-ngp", budget, grid_params(smallest) + decoder_params)
    while largest - smallest > 8:
        middle = (smallest + largest) // 16 * 8
        if grid_params(middle) + decoder_params <= budget:
            smallest = middle
        else:
            largest = middle
    grid = MultiresGrid(spec.in_dim, levels, features_per_level, 0, base, finest, table_size=smallest)
    decoder = MLP(levels * features_per_level, spec.out_dim, DECODER_WIDTH, DECODER_LAYERS)
    lr_decoder, lr_grid = _settings(BASELINE_LRS["instant-ngp"], "instant-ngp", spec.task)
    return grid, decoder, {"encoding": lr_grid, "decoder": lr_decoder}


def _widest(in_dim: int, n_layers: int, out_dim: int, budget: int, preset: str) -> int:
    """The widest MLP of n_layers that fits the budget."""
    if mlp_param_count(in_dim, 8, n_layers, out_dim) > budget:
        raise _too_small(preset, budget, mlp_param_count(in_dim, 8, n_layers, out_dim))
    width = 8
    while mlp_param_count(in_dim, width + 1, n_layers, out_dim) <= budget:
        width += 1
    return width


def _build_siren(spec: SignalSpec, budget: int) -> tuple[nn.Module, nn.Module, dict]:
    n_layers = 4
    width = _widest(spec.in_dim, n_layers, spec.out_dim, budget, "siren")
    lr_decoder, _ = _settings(BASELINE_LRS["siren"], "siren", spec.task)
    encoding = ScaledCoordinates(spec.in_dim, scale=2.0, shift=-1.0)
    return encoding, Siren(spec.in_dim, spec.out_dim, width, n_layers), {"encoding": lr_decoder, "decoder": lr_decoder}


def _build_ffn(spec: SignalSpec, budget: int) -> tuple[nn.Module, nn.Module, dict]:
    n_features, sigma, n_layers = 256, 10.0, 4
    width = _widest(2 * n_features, n_layers, spec.out_dim, budget, "ffn")
    lr_decoder, _ = _settings(BASELINE_LRS["ffn"], "ffn", spec.task)
    encoding = FourierFeatures(spec.in_dim, n_features, sigma)
    decoder = MLP(2 * n_features, spec.out_dim, width, n_layers)
    return encoding, decoder, {"encoding": lr_decoder, "decoder": lr_decoder}


def _build_triplane(spec: SignalSpec, budget: int) -> tuple[nn.Module, nn.Module, dict]:
    if spec.in_dim != 3:
        raise RbfieldError(f"field 'triplane' needs 3-D coordinates; this {spec.task} signal has {spec.in_dim}")
    lr_decoder, lr_planes = _settings(BASELINE_LRS["triplane"], "triplane", spec.task)
    channels = TRIPLANE_CHANNELS
    decoder_params = mlp_param_count(3 * channels, DECODER_WIDTH, DECODER_LAYERS, spec.out_dim)
    if triplane_param_count(2, channels) + decoder_params > budget:
        raise _too_small("triplane", budget, triplane_param_count(2, channels) + decoder_params)
    resolution = 2
    while triplane_param_count(resolution + 1, channels) + decoder_params <= budget:
        resolution += 1
    decoder = MLP(3 * channels, spec.out_dim, DECODER_WIDTH, DECODER_LAYERS)
    return TriPlane(resolution, channels), decoder, {"encoding": lr_planes, "decoder": lr_decoder}


PRESETS: dict[str, Callable[[SignalSpec, int], tuple[nn.Module, nn.Module, dict]]] = {
    "neurbf": _build_neurbf,
    "instant-ngp": _build_instant_ngp,
    "siren": _build_siren,
    "ffn": _build_ffn,
    "triplane": _build_triplane,
}


def build_field(preset: str, spec: SignalSpec | dict, budget: int | str, seed: int = 0) -> Field:
    """Build a named field sized to a trainable-parameter budget.

    Args:
        preset: a key of :data:`PRESETS`.
        spec: the signal's :class:`SignalSpec` (or its dict form).
        budget: trainable parameters allowed (int or "128k").
        seed: seeds the random initialisation, so equal arguments give equal fields.

    Raises:
        RbfieldError: unknown preset, or a budget too small for it.
    """
    if preset not in PRESETS:
        raise RbfieldError(f"unknown field {preset!r}; choose one of: {', '.join(PRESETS)}")
    if isinstance(spec, dict):
        spec = SignalSpec.from_dict(spec)
    budget = parse_budget(budget)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoding, decoder, learning_rates = PRESETS[preset](spec, budget)
    config = {"preset": preset, "spec": spec.to_dict(), "budget": budget, "seed": seed}
    return Field(encoding, decoder, config, learning_rates)


def field_from_config(config: dict) -> Field:
    """Rebuild an (uninitialised) field from :attr:`Field.config`."""
    return build_field(config["preset"], config["spec"], config["budget"], config.get("seed", 0))
