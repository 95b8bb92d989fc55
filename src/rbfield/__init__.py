"""rbfield: neural fields on a plain CPU.

The headline representation is NeuRBF (adaptive radial basis functions with
multi-frequency sinusoid composition, Chen et al., ICCV 2023); beside it are the
baselines users compare against (Instant-NGP hash grid, SIREN, Fourier features).

Quick use::

    import rbfield
    signal = rbfield.ImageSignal.from_path("photo.png")
    field = rbfield.build_field("neurbf", signal.spec(), budget=128_000)
    field.initialize(signal)
    result = rbfield.fit(field, signal, rbfield.TrainConfig(steps=2000))
"""

from rbfield.errors import RbfieldError, TrainingDiverged
from rbfield.fields import Field, PRESETS, build_field, parse_budget
from rbfield.signals.image import ImageSignal, load_image
from rbfield.train import TrainConfig, fit

__all__ = [
    "RbfieldError",
    "TrainingDiverged",
    "Field",
    "PRESETS",
    "build_field",
    "parse_budget",
    "ImageSignal",
    "load_image",
    "TrainConfig",
    "fit",
]
__version__ = "0.1.0"
