"""Many fields at once: a folder, glob or manifest of inputs fitted on a local process pool or on Ray.

See :mod:`rbfield.datasets.engine` for what a dataset run writes.
"""

from rbfield.datasets.engine import DatasetResult, compare_dataset, fit_dataset, run_jobs, worker_layout
from rbfield.datasets.inputs import Job, is_dataset, load_jobs
from rbfield.datasets.runner import Outcome, run_job

__all__ = [
    "DatasetResult",
    "Job",
    "Outcome",
    "compare_dataset",
    "fit_dataset",
    "is_dataset",
    "load_jobs",
    "run_job",
    "run_jobs",
    "worker_layout",
]
