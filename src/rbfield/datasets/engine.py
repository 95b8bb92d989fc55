"""Fit many fields at once: every input of a dataset (:func:`fit_dataset`), or every field on every input at one
budget (:func:`compare_dataset`), on a local pool of worker processes or on Ray.

The output folder holds one run folder per input (per input and field for a comparison) exactly as a single fit
writes it, ``logs/`` with each fit's messages, ``summary.csv`` / ``summary.jsonl`` (one row per fit: status,
one-line error, wall seconds, parameter counts, metrics), ``summary.png`` and, for a comparison, ``compare.md``
and ``compare.json``. Running the same command again skips complete runs and resumes interrupted ones.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from rbfield.datasets.inputs import Job, load_jobs
from rbfield.datasets.progress import Progress
from rbfield.datasets.runner import Outcome, run_local
from rbfield.datasets.summary import plot_summary, summary_rows, write_comparison, write_table
from rbfield.errors import RbfieldError

BACKENDS = ("local", "ray")


@dataclass
class DatasetResult:
    """What a dataset run did.

    Attributes:
        out: the output folder.
        outcomes: one per job, in input order.
        files: the summary files written: "csv", "jsonl", "plot" and, for a comparison, "markdown", "json".
    """

    out: Path
    outcomes: list[Outcome]
    files: dict[str, Path] = field(default_factory=dict)

    def count(self, status: str) -> int:
        """Jobs with ``status`` ("done", "skipped" or "failed")."""
        return sum(outcome.status == status for outcome in self.outcomes)

    @property
    def failed(self) -> int:
        """Jobs that failed."""
        return self.count("failed")


def task_defaults(task: str) -> dict:
    """The dataset settings a single ``fit <task>`` would use: field, budget, steps, seed, batch, evaluation and
    checkpoint intervals (the task's command-line defaults)."""
    if task == "sdf":
        from rbfield.commands.sdf import TRAINING_DEFAULTS
    elif task == "image":
        from rbfield.commands.image import TRAINING_DEFAULTS
    else:
        raise RbfieldError(f"unknown task {task!r}; choose from: sdf, image")
    return {
        "field": "neurbf",
        "params": TRAINING_DEFAULTS.params,
        "steps": TRAINING_DEFAULTS.steps,
        "time": None,
        "seed": 0,
        "batch": TRAINING_DEFAULTS.batch,
        "eval_every": TRAINING_DEFAULTS.eval_every,
        "checkpoint_every": 1000,
    }


def worker_layout(jobs: int, workers: int | None, threads: int | None, cores: int | None = None) -> tuple[int, int]:
    """(workers, threads per worker): by default workers x threads = cores, one thread per worker, and no more
    workers than jobs (spare cores become threads). A given value is kept; the other fills the cores."""
    cores = cores or os.cpu_count() or 1
    if workers is not None and workers < 1 or threads is not None and threads < 1:
        raise RbfieldError(f"workers and threads must be at least 1, got {workers} and {threads}")
    if workers is None and threads is None:
        workers = max(1, min(cores, jobs))
        return workers, max(1, cores // workers)
    if workers is None:
        return max(1, min(jobs, cores // threads)), threads
    return workers, threads if threads is not None else max(1, cores // workers)


def _settings(task: str, given: dict, options: dict) -> dict:
    settings = task_defaults(task)
    settings.update({key: value for key, value in given.items() if value is not None})
    if given.get("time") is not None and given.get("steps") is None:
        settings["steps"] = None
    return {**settings, **options}


def run_jobs(
    jobs: list[Job],
    out: str | Path,
    workers: int | None = None,
    threads: int | None = None,
    backend: str = "local",
    ray_address: str | None = None,
    progress=sys.stderr,
) -> list[Outcome]:
    """Run ``jobs`` on ``backend`` ("local" or "ray") with :func:`worker_layout`'s workers and threads, showing
    one progress display on ``progress`` (a stream, or None); the outcomes in job order."""
    if backend not in BACKENDS:
        raise RbfieldError(f"unknown backend {backend!r}; choose from: {', '.join(BACKENDS)}")
    workers, threads = worker_layout(len(jobs), workers, threads)
    display = Progress(len(jobs), workers, stream=progress)
    try:
        if backend == "ray":
            from rbfield.datasets.ray_backend import run_ray

            return run_ray(jobs, out, threads, display.update, address=ray_address, num_cpus=workers * threads)
        return run_local(jobs, out, workers, threads, display.update)
    finally:
        display.close()


def _write_summary(outcomes: list[Outcome], out: Path, task: str, params, compare: bool) -> dict[str, Path]:
    rows = summary_rows(outcomes)
    csv_path, jsonl_path = write_table(rows, out)
    files = {"csv": csv_path, "jsonl": jsonl_path, "plot": plot_summary(rows, task, out / "summary.png")}
    if compare:
        files["markdown"], files["json"] = write_comparison(rows, task, params, out)
    return files


def _run_dataset(source, out, task: str, fields: list[str] | None, given: dict, engine: dict, options: dict):
    jobs = load_jobs(source, task, _settings(task, given, options), fields=fields)
    out = Path(out)
    outcomes = run_jobs(jobs, out, **engine)
    budget = jobs[0].settings["params"]
    return DatasetResult(out, outcomes, _write_summary(outcomes, out, task, budget, compare=fields is not None))


def fit_dataset(
    source: str | Path,
    out: str | Path,
    task: str,
    field: str = "neurbf",
    params: str | int | None = None,
    steps: int | None = None,
    time: float | None = None,
    seed: int = 0,
    batch: int | None = None,
    eval_every: int | None = None,
    checkpoint_every: int = 1000,
    workers: int | None = None,
    threads: int | None = None,
    backend: str = "local",
    ray_address: str | None = None,
    progress=sys.stderr,
    **options,
) -> DatasetResult:
    """Fit ``field`` to every input of ``source`` (a folder, a glob or a manifest; see
    :func:`rbfield.datasets.inputs.load_jobs`) into ``out/<input>``.

    Args:
        task: "sdf" or "image".
        field, params, steps, time, seed, batch, eval_every, checkpoint_every: as the ``fit`` command's flags
            (None: the task's default; ``time`` in seconds of training); a manifest row may override field,
            params, steps, time, seed and batch for its input.
        workers, threads: worker processes (Ray: concurrent tasks) and threads per worker; see
            :func:`worker_layout`. One thread per worker makes each fit's numbers identical to a single fit's
            on one thread with the same seed.
        backend, ray_address: "local" (a process pool) or "ray" (``ray_address`` None: a local Ray instance).
        progress: stream for the progress display (None: none).
        options: the task's own keyword arguments, e.g. ``mesh_resolution``, ``metric_samples``,
            ``min_piece_share``, ``gradient_step`` of :func:`rbfield.tasks.sdf.fit_sdf`, and ``device``
            ("auto", "cpu", "cuda" or "mps"; each worker resolves it).

    The local pool starts its workers afresh ("spawn"), so a script that calls this needs the usual
    ``if __name__ == "__main__":`` guard. Ctrl-C / SIGTERM (as KeyboardInterrupt) stops the running fits after
    they write their checkpoints; calling again with the same arguments skips complete runs and resumes those.

    Returns:
        A :class:`DatasetResult`; ``result.failed`` counts the inputs that failed (each with its one-line error
        in the summary; the others went on).
    """
    given = {"field": field, "params": params, "steps": steps, "time": time, "seed": seed, "batch": batch}
    given |= {"eval_every": eval_every, "checkpoint_every": checkpoint_every}
    engine = {"workers": workers, "threads": threads, "backend": backend, "ray_address": ray_address}
    return _run_dataset(source, out, task, None, given, {**engine, "progress": progress}, options)


def compare_dataset(
    source: str | Path,
    out: str | Path,
    task: str,
    fields: list[str],
    params: str | int | None = None,
    steps: int | None = None,
    time: float | None = None,
    seed: int = 0,
    batch: int | None = None,
    eval_every: int | None = None,
    checkpoint_every: int = 1000,
    workers: int | None = None,
    threads: int | None = None,
    backend: str = "local",
    ray_address: str | None = None,
    progress=sys.stderr,
    **options,
) -> DatasetResult:
    """Fit every field in ``fields`` to every input at one budget into ``out/<input>/<field>``, and write each
    field's mean and spread over all inputs with per-input rows (``compare.md``, ``compare.json``). Other
    arguments as :func:`fit_dataset`; a manifest may not choose a field."""
    if not fields:
        raise RbfieldError("a comparison needs at least one field")
    given = {"params": params, "steps": steps, "time": time, "seed": seed, "batch": batch}
    given |= {"eval_every": eval_every, "checkpoint_every": checkpoint_every}
    engine = {"workers": workers, "threads": threads, "backend": backend, "ray_address": ray_address}
    return _run_dataset(source, out, task, list(fields), given, {**engine, "progress": progress}, options)
