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

from rbfield.ops import keep_freed_memory_mapped

keep_freed_memory_mapped()

from rbfield.errors import RbfieldError, TrainingDiverged  # noqa: E402
from rbfield.fields import Field, PRESETS, build_field, parse_budget  # noqa: E402
from rbfield.signals.image import ImageSignal, load_image  # noqa: E402
from rbfield.train import TrainConfig, fit  # noqa: E402

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
