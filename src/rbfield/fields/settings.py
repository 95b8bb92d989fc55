"""Typed settings of every field preset, one frozen dataclass per family.

The registry (:mod:`rbfield.fields.registry`) holds one instance per
(preset, task); :func:`rbfield.build_field` takes an edited copy, so an
experiment changes a setting without touching module state::

    from dataclasses import replace
    settings = replace(default_settings("neurbf", "image"), grid_share=0.25)
    field = build_field("neurbf", spec, "128k", settings=settings)

Learning rates are Adam's base rates; the trainer decays them by a cosine.
Frequencies are in cycles-per-unit multipliers of the kernel value (NeuRBF's
``m``); shares are fractions of the trainable-parameter budget.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass


@dataclass(frozen=True)
class NeuRBFSettings:
    """Adaptive RBFs + a small hash grid, decoded by an MLP (image and SDF).

    Attributes:
        kernel: "inverse_quadric", "tent" or "gaussian".
        k_neighbours: RBFs each point gathers (nearest by centre).
        channels: feature channels per RBF (one sinusoid frequency each).
        frequency_range: (m_lo, m_hi) of the per-channel frequencies, log-spaced.
        normalize: divide the kernel values by their sum over the neighbours.
        shape_alpha: cluster covariance divided by this before inversion.
        placement_power: the placement weights (image: Sobel magnitude; SDF:
            1 / |sdf|) are raised to this power before weighted k-means; 1 is
            the paper, below 1 moves RBFs from edges into smooth regions.
        learn_phase: train the phase ``b`` inside ``sin(phi m + b)``.
        grid_levels, grid_features, grid_base: the hash grid beside the RBFs.
        grid_finest: finest grid resolution; None for the signal's own resolution.
        grid_share: at most this share of the budget goes to the grid table.
        grid_table_power_of_two: the table's rows per level are a power of two (the paper's code);
            False: any multiple of 8 (as instant-ngp here), so the grid fills its share.
        first_layer_frequencies: (lo, hi) of the decoder's ``h + sin(h m0)``; None for plain ReLU.
        lr_decoder, lr_features: base learning rates.
        decoder_width, decoder_layers: the MLP's hidden width and linear layers.
    """

    kernel: str
    k_neighbours: int
    channels: int
    frequency_range: tuple[float, float]
    normalize: bool
    shape_alpha: float
    learn_phase: bool
    grid_levels: int
    grid_features: int
    grid_base: int
    grid_finest: int | None
    grid_share: float
    first_layer_frequencies: tuple[float, float] | None
    lr_decoder: float
    lr_features: float
    decoder_width: int = 64
    decoder_layers: int = 3
    placement_power: float = 1.0
    grid_table_power_of_two: bool = True


@dataclass(frozen=True)
class HashGridSettings:
    """Instant-NGP: a multiresolution hash grid + ReLU MLP (image and SDF); the table is as large as fits."""

    lr_decoder: float
    lr_features: float
    levels: int = 16
    features: int = 2
    base: int = 16
    decoder_width: int = 64
    decoder_layers: int = 3


@dataclass(frozen=True)
class SirenSettings:
    """SIREN: sine-activated MLP on coordinates in [-1, 1]; the width is solved for the budget."""

    lr: float
    layers: int = 4


@dataclass(frozen=True)
class FourierSettings:
    """Random Fourier features (Gaussian matrix, std ``sigma``) + a ReLU MLP; the width is solved for the budget."""

    lr: float
    n_features: int = 256
    sigma: float = 10.0
    layers: int = 4


@dataclass(frozen=True)
class TriPlaneSettings:
    """Three dense feature planes (concatenated) + a ReLU MLP; the plane resolution is as large as fits."""

    lr_decoder: float
    lr_features: float
    channels: int = 16
    decoder_width: int = 64
    decoder_layers: int = 3


@dataclass(frozen=True)
class RadianceHashGridSettings:
    """Instant-NGP for scenes: hash grid -> density MLP (log-density + geometry features) -> colour MLP on SH."""

    levels: int = 16
    features: int = 2
    base: int = 16
    finest: int = 512
    hidden: int = 64
    geo_features: int = 15
    lr: float = 1e-2


@dataclass(frozen=True)
class TensorfSettings:
    """TensoRF vector-matrix factorisation for scenes; the grid resolution is as large as fits.

    Attributes:
        density_components, app_components: VM components per plane/line pair.
        basis: appearance features after the linear basis.
        hidden: colour MLP width; view_frequencies: frequency encoding of the view direction.
        density_shift: added before the softplus (scene starts nearly empty).
        lr_grid, lr_network: base learning rates; init_scale: std of the initial VM values.
    """

    density_components: int = 8
    app_components: int = 24
    basis: int = 27
    hidden: int = 64
    view_frequencies: int = 2
    density_shift: float = -10.0
    lr_grid: float = 2e-2
    lr_network: float = 1e-3
    init_scale: float = 0.1


@dataclass(frozen=True)
class RadianceNeuRBFSettings(TensorfSettings):
    """TensoRF with adaptive RBF appearance features (NeuRBF's scene setting).

    Attributes:
        channels, k_neighbours, frequency_range, shape_alpha: as :class:`NeuRBFSettings` (unnormalized kernels).
        rbf_share: share of the budget for the RBF weights.
        lr_rbf: base learning rate of the RBF weights.
        warmup_fraction: share of the steps trained grid-only before the RBFs are placed.
        init_samples: weighted points drawn for the placement's k-means.
    """

    channels: int = 32
    k_neighbours: int = 5
    frequency_range: tuple[float, float] = (1.0, 2.0**8)
    shape_alpha: float = 0.3
    rbf_share: float = 0.25
    lr_rbf: float = 1e-2
    warmup_fraction: float = 0.15
    init_samples: int = 2**19


def settings_to_dict(settings) -> dict:
    """A settings dataclass as a JSON-ready dict (tuples become lists in JSON)."""
    return dataclasses.asdict(settings)


def settings_from_dict(kind: type, data: dict):
    """Rebuild a settings dataclass of type ``kind`` from :func:`settings_to_dict`'s output."""
    hints = typing.get_type_hints(kind)
    values = {}
    for item in dataclasses.fields(kind):
        if item.name not in data:
            continue
        value = data[item.name]
        if isinstance(value, list) and "tuple" in str(hints[item.name]):
            value = tuple(value)
        values[item.name] = value
    return kind(**values)
