"""The one preset registry: for every (preset, task), its settings and its builder.

:func:`build_field` is the single way to make a field. The field's config
records the preset, the signal's spec (task included), the budget, the seed and
the full settings, so :func:`field_from_config` rebuilds exactly the same
architecture, custom settings included.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from rbfield.errors import RbfieldError
from rbfield.fields import presets, radiance
from rbfield.fields.field import Field, FieldBase
from rbfield.fields.settings import (
    FourierSettings,
    HashGridSettings,
    NeuRBFSettings,
    RadianceHashGridSettings,
    RadianceNeuRBFSettings,
    SirenSettings,
    TensorfSettings,
    TriPlaneSettings,
    settings_from_dict,
    settings_to_dict,
)
from rbfield.spec import SignalSpec


@dataclass(frozen=True)
class Preset:
    """One preset for one task.

    Attributes:
        settings: the default settings (a frozen dataclass).
        build: ``build(spec, budget, settings)`` -> ``(encoding, decoder, learning_rates)``
            for image/SDF presets, or ``build(spec, budget, settings, config)`` -> a
            :class:`~rbfield.fields.radiance.RadianceField` when ``radiance`` is true.
        radiance: whether the builder makes a whole scene field.
        choose: ``choose(spec, budget)`` -> the default settings for this signal and budget, when
            they depend on them; None: always ``settings``.
    """

    settings: object
    build: Callable
    radiance: bool = False
    choose: Callable[[SignalSpec, int], object] | None = None

    def settings_for(self, spec: SignalSpec, budget: int):
        """The default settings for a signal of this spec at this budget of trainable parameters."""
        return self.settings if self.choose is None else self.choose(spec, budget)


# NeuRBF's image setting follows the paper and its released image config, with two departures measured
# on the crop benchmark (bench/image_crops.py; docs/neurbf.md has the tables):
# - placement weights are the square root of the Sobel magnitude, not the magnitude: the paper's weights
#   crowd the RBFs onto edges and leave smooth, JPEG-blocked or out-of-focus regions to a few wide ones;
# - the feature learning rate is 1e-2, not 5e-3.
NEURBF_IMAGE = NeuRBFSettings(
    kernel="inverse_quadric",
    k_neighbours=4,
    channels=32,
    frequency_range=(2.0**-3, 2.0**12),
    normalize=True,
    shape_alpha=0.5,
    learn_phase=True,
    grid_levels=2,
    grid_features=2,
    grid_base=16,
    grid_finest=None,
    grid_share=0.125,
    first_layer_frequencies=(1.0, 1000.0),
    lr_decoder=1e-2,
    lr_features=1e-2,
    placement_power=0.5,
)
# NeuRBF's large-image setting, for images of LARGE_IMAGE_PIXELS and more, measured on the 2560-pixel photos
# (bench/large_photos.py; BENCHMARKS.md, "Large photos at equal time" and "Equal steps"). There a step sees a
# random batch, not every pixel, and a time limit favours cheap steps. Three departures from the image setting:
# - 90 % of the budget goes to a 16-level hash grid, not 12.5 % to 2 levels, its table any multiple of 8 rows
#   (a power of two left it at 76-82 % at 4.3M: on storm at 2,000 steps, 51.76 dB; 85 / 90 / 95 %: 52.25 /
#   52.34 / 52.13 dB);
# - 16 channels per RBF, not 32: cheaper steps;
# - the decoder's first-layer frequencies are [1, 10], not [1, 1000]: with the high ones neurbf learned
#   slower from sampled batches (-2.1 dB at 240 s).
NEURBF_LARGE_IMAGE = replace(
    NEURBF_IMAGE,
    channels=16,
    grid_levels=16,
    grid_share=0.9,
    grid_table_power_of_two=False,
    first_layer_frequencies=(1.0, 10.0),
)
#: Images with at least this many pixels (724x724) take NEURBF_LARGE_IMAGE (at a budget it fits). They won on
#: a 1000x1000 crop too (50.91 dB against 49.14 at 1M parameters and 240 s); the image setting was chosen on
#: 256x256 crops; nothing between was measured.
LARGE_IMAGE_PIXELS = 2**19


def neurbf_image_settings(spec: SignalSpec, budget: int) -> NeuRBFSettings:
    """NeuRBF's image settings for an image of ``spec.resolution`` at ``budget`` trainable parameters: the
    large-image ones from half a megapixel, unless the budget is below their smallest field (about 78K at 64
    decoder units), where the image ones still fit."""
    large = math.prod(spec.resolution) >= LARGE_IMAGE_PIXELS
    if large and budget >= presets.neurbf_smallest_budget(spec, NEURBF_LARGE_IMAGE):
        return NEURBF_LARGE_IMAGE
    return NEURBF_IMAGE


# NeuRBF's SDF setting: tent kernel, k = 8, sinusoid frequencies 1..8, a 16-level hash grid with 1 feature
# per level whose table takes ~55 % of the budget. Four departures from the paper, each measured
# (docs/neurbf.md has the tables):
# - finest grid level 256, not 2048: with ~1/100 of the paper's training points the hashed fine levels
#   add collision noise that the fit never averages out (elephant NAE 4.41 deg against 4.98);
# - first-layer m0 in [1, 5], not [30, 300]: the high frequencies leave ripples on the surface
#   (bunny NAE 3.18 deg against 6.43 at 1,500 steps);
# - learning rate 3e-4, not 1e-4: a CPU fit takes ~1/20 of the paper's steps and points, where 1e-4 leaves
#   the far field unlearnt (bunny IoU 0.978 against 0.944);
# - no learnable phase b (as in the released code): with b != 0 a point whose nearest tents are all zero
#   still gets sin(b) * sum w, which jumps where the neighbour set changes.
NEURBF_SDF = NeuRBFSettings(
    kernel="tent",
    k_neighbours=8,
    channels=32,
    frequency_range=(1.0, 8.0),
    normalize=True,
    shape_alpha=0.5,
    learn_phase=False,
    grid_levels=16,
    grid_features=1,
    grid_base=16,
    grid_finest=256,
    grid_share=0.55,
    first_layer_frequencies=(1.0, 5.0),
    lr_decoder=3e-4,
    lr_features=3e-4,
)

#: {preset name: {task: Preset}}.
PRESETS: dict[str, dict[str, Preset]] = {
    "neurbf": {
        "image": Preset(NEURBF_IMAGE, presets.build_neurbf, choose=neurbf_image_settings),
        "sdf": Preset(NEURBF_SDF, presets.build_neurbf),
        "radiance": Preset(RadianceNeuRBFSettings(), radiance.build_radiance_neurbf, radiance=True),
    },
    "instant-ngp": {
        "image": Preset(HashGridSettings(lr_decoder=1e-2, lr_features=1e-2), presets.build_hash_grid),
        "sdf": Preset(HashGridSettings(lr_decoder=3e-4, lr_features=3e-4), presets.build_hash_grid),
        "radiance": Preset(RadianceHashGridSettings(), radiance.build_radiance_hash_grid, radiance=True),
    },
    "siren": {
        "image": Preset(SirenSettings(lr=1e-4), presets.build_siren),
        "sdf": Preset(SirenSettings(lr=1e-4), presets.build_siren),
    },
    "ffn": {
        "image": Preset(FourierSettings(lr=1e-3), presets.build_fourier),
        "sdf": Preset(FourierSettings(lr=1e-3), presets.build_fourier),
    },
    "triplane": {
        "sdf": Preset(TriPlaneSettings(lr_decoder=3e-4, lr_features=3e-4), presets.build_triplane),
    },
    "tensorf": {
        "radiance": Preset(TensorfSettings(), radiance.build_tensorf, radiance=True),
    },
}


def presets_for(task: str) -> list[str]:
    """The preset names that have settings for ``task``, in registry order."""
    return [name for name, tasks in PRESETS.items() if task in tasks]


def lookup(preset: str, task: str) -> Preset:
    """The registry entry of (preset, task), or a clear error naming what exists."""
    if preset not in PRESETS:
        raise RbfieldError(f"unknown field {preset!r}; choose one of: {', '.join(PRESETS)}")
    if task not in PRESETS[preset]:
        raise RbfieldError(
            f"field {preset!r} has no settings for {task!r} signals; for {task} choose one of: "
            f"{', '.join(presets_for(task))}"
        )
    return PRESETS[preset][task]


def default_settings(preset: str, task: str, spec: SignalSpec | None = None, budget: int | str | None = None):
    """The default settings dataclass of (preset, task), edit a copy with ``dataclasses.replace``.

    Some presets choose by the signal's size and the budget (neurbf on images of half a megapixel and more):
    given ``spec`` and ``budget``, the settings :func:`build_field` would use; otherwise the small-signal ones.
    """
    entry = lookup(preset, task)
    return entry.settings if spec is None or budget is None else entry.settings_for(spec, parse_budget(budget))


def parse_budget(text: str | int) -> int:
    """Parse a parameter budget: 128000, "128k", "1.5M" (k = 1e3, M = 1e6)."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmM]?)\s*", str(text))
        if not match:
            raise RbfieldError(f"cannot read parameter budget {text!r}; write e.g. 128k, 1.5M or 50000")
        scale = {"": 1, "k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6}[match.group(2)]
        value = int(float(match.group(1)) * scale)
    if value < 1:
        raise RbfieldError(f"the parameter budget must be positive, got {text!r}")
    return value


def build_field(
    preset: str, spec: SignalSpec | dict, budget: int | str, seed: int = 0, settings: object | None = None
) -> FieldBase:
    """Build a named field sized to a budget of trainable parameters.

    Args:
        preset: a name in :data:`PRESETS` ("neurbf", "instant-ngp", ...).
        spec: the signal's :class:`~rbfield.spec.SignalSpec` (or its dict form);
            its task selects the settings.
        budget: trainable parameters allowed (an int, or text such as "128k").
        seed: seeds the random initialisation, so equal arguments give equal fields.
        settings: replaces the preset's default settings for this signal (same
            dataclass type; see :func:`default_settings`).

    Returns:
        A :class:`~rbfield.fields.field.Field` (image, SDF) or a
        :class:`~rbfield.fields.radiance.RadianceField` (scenes), uninitialised.

    Raises:
        RbfieldError: unknown preset, no settings for the task, settings of the
            wrong type, or a budget too small for the preset.

    Example:
        >>> from rbfield import SignalSpec, build_field
        >>> spec = SignalSpec(task="image", in_dim=2, out_dim=3, resolution=(256, 256))
        >>> field = build_field("instant-ngp", spec, "64k")
        >>> field.param_counts()["trainable"] <= 64_000
        True
    """
    if isinstance(spec, dict):
        spec = SignalSpec.from_dict(spec)
    entry = lookup(preset, spec.task)
    budget = parse_budget(budget)
    settings = entry.settings_for(spec, budget) if settings is None else settings
    if type(settings) is not type(entry.settings):
        raise RbfieldError(
            f"field {preset!r} for {spec.task} takes {type(entry.settings).__name__}, not {type(settings).__name__}"
        )
    config = {
        "preset": preset,
        "spec": spec.to_dict(),
        "budget": budget,
        "seed": seed,
        "settings": settings_to_dict(settings),
    }
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if entry.radiance:
            return entry.build(spec, budget, settings, config)
        encoding, decoder, learning_rates = entry.build(spec, budget, settings)
    return Field(encoding, decoder, config, learning_rates)


def field_from_config(config: dict) -> FieldBase:
    """Rebuild an (uninitialised) field from its ``config`` (:func:`build_field` recorded it)."""
    if "spec" not in config and config.get("kind") == "radiance":
        config = _radiance_config_before_settings(config)
    spec = SignalSpec.from_dict(config["spec"])
    entry = lookup(config["preset"], spec.task)
    settings = entry.settings
    if "settings" in config:
        settings = settings_from_dict(type(entry.settings), config["settings"])
    return build_field(config["preset"], spec, config["budget"], config.get("seed", 0), settings)


def _radiance_config_before_settings(config: dict) -> dict:
    """A scene field's config as saved by rbfield 0.1 (box, occupancy and camera at the top) in today's form."""
    context = {key: config[key] for key in ("box", "occupancy_resolution", "camera") if key in config}
    camera = config.get("camera") or {}
    resolution = (camera.get("width", 1), camera.get("height", 1))
    spec = {"task": "radiance", "in_dim": 3, "out_dim": 4, "resolution": resolution, "context": context}
    return {"preset": config["preset"], "spec": spec, "budget": config["budget"], "seed": config.get("seed", 0)}
