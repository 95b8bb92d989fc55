"""rbfield: neural fields on a plain CPU.

The headline representation is NeuRBF (adaptive radial basis functions with
multi-frequency sinusoid composition, Chen et al., ICCV 2023); beside it are
the baselines users compare against (Instant-NGP hash grid, SIREN, Fourier
features, tri-planes, TensoRF), all sized to the same budget.

Public names are imported on first use, so ``import rbfield`` is quick.

Example:
    >>> import numpy as np
    >>> import rbfield
    >>> photo = np.linspace(0, 1, 32 * 32 * 3, dtype=np.float32).reshape(32, 32, 3)
    >>> signal = rbfield.ImageSignal(photo, name="ramp")
    >>> field = rbfield.build_field("instant-ngp", signal.spec(), budget="20k")
    >>> result = rbfield.fit(field, signal, rbfield.TrainConfig(steps=50, progress=False))
    >>> result.history[-1]["psnr"] > 25
    True
"""

import rbfield.ops  # noqa: F401  (before torch loads: idle OpenMP threads spin briefly, see rbfield.ops.wait_briefly)
from rbfield.lazy import lazy_exports

__version__ = "0.2.0"

#: Public name -> the module that defines it.
_EXPORTS = {
    "RbfieldError": "rbfield.errors",
    "TrainingDiverged": "rbfield.errors",
    "SignalSpec": "rbfield.spec",
    "Signal": "rbfield.contracts",
    "TrainableField": "rbfield.contracts",
    "Metrics": "rbfield.contracts",
    "PRESETS": "rbfield.fields",
    "Field": "rbfield.fields",
    "FieldBase": "rbfield.fields",
    "RadianceField": "rbfield.fields",
    "build_field": "rbfield.fields",
    "default_settings": "rbfield.fields",
    "field_from_config": "rbfield.fields",
    "parse_budget": "rbfield.fields",
    "presets_for": "rbfield.fields",
    "ImageSignal": "rbfield.signals.image",
    "load_image": "rbfield.signals.image",
    "reconstruct": "rbfield.signals.image",
    "MeshSDF": "rbfield.signals.sdf",
    "PointCloudSDF": "rbfield.signals.sdf",
    "RadianceSignal": "rbfield.signals.radiance",
    "scene_spec": "rbfield.signals.radiance",
    "TrainConfig": "rbfield.train",
    "FitResult": "rbfield.train",
    "fit": "rbfield.train",
    "save_field": "rbfield.io",
    "load_field": "rbfield.io",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
