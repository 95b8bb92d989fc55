"""Many fields at once: a folder, glob or manifest of inputs fitted on a local process pool or on Ray.

See :mod:`rbfield.datasets.engine` for what a dataset run writes. Public names are imported on first
use, so the command line can register its dataset flags (:mod:`rbfield.datasets.command`) without
loading PyTorch.
"""

from rbfield.lazy import lazy_exports

#: Public name -> the module that defines it.
_EXPORTS = {
    "DatasetResult": "rbfield.datasets.engine",
    "compare_dataset": "rbfield.datasets.engine",
    "fit_dataset": "rbfield.datasets.engine",
    "run_jobs": "rbfield.datasets.engine",
    "worker_layout": "rbfield.datasets.engine",
    "Job": "rbfield.datasets.inputs",
    "is_dataset": "rbfield.datasets.inputs",
    "load_jobs": "rbfield.datasets.inputs",
    "Outcome": "rbfield.datasets.runner",
    "run_job": "rbfield.datasets.runner",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
