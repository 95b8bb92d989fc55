"""Run a dataset's jobs: one fit per job in a worker process, each writing the run folder a single fit writes.

:func:`run_job` is what a worker does (the local pool's and Ray's alike): set its thread counts, skip a complete
run (``metrics.json`` exists), resume an interrupted one from its checkpoint (in its staging folder), and turn
any error into a failed :class:`Outcome` with a one-line message (the traceback goes to ``logs/<job>.log``).
:func:`run_local` runs jobs on a pool of worker processes.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rbfield.datasets.inputs import Job
from rbfield.ops import set_threads

#: Settings every job has; the rest of a job's settings are keyword arguments of its task's fit function.
TRAINING_KEYS = ("field", "params", "steps", "time", "seed", "batch", "eval_every", "checkpoint_every")
#: Report entries left out of an outcome (long or nested; they stay in the run's metrics.json).
BULKY_KEYS = ("history", "metric_settings")
#: Times a job is started again after its worker process died (it resumes from its checkpoint).
RETRIES_AFTER_A_DEAD_WORKER = 1
#: Seconds an interrupted worker gets to end its training step and write its checkpoint before it is killed.
SECONDS_TO_SAVE = 60.0


@dataclass
class Outcome:
    """What became of one job.

    Attributes:
        name, input_name, field, input: the job's run folder name, input name, field preset and input file.
        status: "done" (fitted now), "skipped" (complete before) or "failed".
        error: for a failed job, one line saying why; otherwise "".
        seconds: wall-clock seconds of the job in its worker (loading, training, meshing, scoring; 0 if skipped).
        report: the run's metrics.json without its history and metric notes ({} if failed).
    """

    name: str
    input_name: str
    field: str
    input: str
    status: str
    error: str = ""
    seconds: float = 0.0
    report: dict = field(default_factory=dict)

    @classmethod
    def failed(cls, job: Job, error: str, seconds: float = 0.0) -> Outcome:
        """A failed outcome of ``job``."""
        return cls(job.name, job.input_name, job.settings["field"], str(job.path), "failed", error, seconds)

    def to_dict(self) -> dict:
        return asdict(self)


def one_line(error: BaseException) -> str:
    """An error as one line: rbfield's own errors by their message, others prefixed with their type."""
    from rbfield.errors import RbfieldError

    message = " ".join(str(error).split()) or "(no message)"
    return message if isinstance(error, RbfieldError) else f"{type(error).__name__}: {message}"


def _fit(job: Job, run_dir: Path, resume: bool, log: Callable[[str], None]) -> dict:
    """Fit ``job`` into ``run_dir`` with its task's fit function; its report."""
    from rbfield.train import TrainConfig

    settings = job.settings
    train = TrainConfig(
        steps=settings["steps"],
        time_budget=settings["time"],
        seed=settings["seed"],
        eval_every=settings["eval_every"],
        checkpoint_every=settings["checkpoint_every"],
        progress=False,
    )
    options = {k: v for k, v in settings.items() if k not in TRAINING_KEYS}
    if job.task == "sdf":
        from rbfield.tasks.sdf import fit_sdf

        return fit_sdf(
            job.path,
            run_dir,
            settings["field"],
            settings["params"],
            train,
            batch=settings["batch"],
            resume=resume,
            log=log,
            **options,
        )
    from rbfield.signals.image import ImageSignal
    from rbfield.tasks.image import fit_image

    signal = ImageSignal.from_path(job.path, batch_size=settings["batch"])
    return fit_image(signal, run_dir, settings["field"], settings["params"], train, resume=resume, log=log, **options)


def _brief(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in BULKY_KEYS}


def run_job(job: Job, out: str | Path, threads: int) -> Outcome:
    """Fit one job into ``out/<job.name>`` on ``threads`` threads (set first), unless its run is complete.

    An interrupted run (a checkpoint, no metrics.json) resumes. Messages of the fit and, if it fails, the
    traceback go to ``out/logs/<job.name>.log``. Ctrl-C / SIGTERM propagate (the fit saved a checkpoint).
    """
    from rbfield.runs import RunFolder
    from rbfield.tasks.common import is_interrupt

    set_threads(threads)
    run_dir = Path(out) / job.name
    metrics_path = run_dir / "metrics.json"
    if metrics_path.exists():
        report = json.loads(metrics_path.read_text())
        return Outcome(job.name, job.input_name, job.settings["field"], str(job.path), "skipped", report=_brief(report))
    log_path = Path(out) / "logs" / f"{job.name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(log_path, "a") as log_file:

        def log(message: str) -> None:
            print(message, file=log_file, flush=True)

        resume = RunFolder(run_dir, resume=True).resume_checkpoint() is not None  # an interrupted run's staging
        log(f"{'resuming' if resume else 'fitting'} {job.settings['field']} to {job.path} in {run_dir}")
        try:
            report = _fit(job, run_dir, resume, log)
        except Exception as error:
            if is_interrupt(error):  # Numba wraps a Ctrl-C in a SystemError
                raise KeyboardInterrupt from error
            log(traceback.format_exc())
            return Outcome.failed(job, one_line(error), round(time.perf_counter() - started, 2))
    return Outcome(
        job.name,
        job.input_name,
        job.settings["field"],
        str(job.path),
        "done",
        seconds=round(time.perf_counter() - started, 2),
        report=_brief(report),
    )


def _pool_job(job: Job, out: str, threads: int) -> Outcome:
    """:func:`run_job` in a pool worker; an interrupted worker exits (its fit wrote a checkpoint) rather than
    start the next queued job."""
    try:
        return run_job(job, out, threads)
    except KeyboardInterrupt:
        os._exit(130)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Interrupt every worker (SIGTERM: a fit ends its step and writes its checkpoint, as on Ctrl-C), wait up to
    SECONDS_TO_SAVE for them, kill the rest, and drop the jobs not started. The executor has no public handle
    on its processes, hence ``_processes``."""
    processes = list(getattr(pool, "_processes", {}).values())
    for process in processes:
        process.terminate()
    deadline = time.monotonic() + SECONDS_TO_SAVE
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
    pool.shutdown(wait=False, cancel_futures=True)


def run_local(
    jobs: list[Job], out: str | Path, workers: int, threads: int, on_outcome: Callable[[Outcome], None]
) -> list[Outcome]:
    """Run ``jobs`` on ``workers`` worker processes of ``threads`` threads each, in input order.

    Workers are started fresh ("spawn": no state shared with this process) and set their thread counts before
    any work. A job whose worker dies (killed, out of memory, a crash in native code) is started again once in a
    new pool, resuming from its checkpoint; if its worker dies again the job fails. ``on_outcome`` is called in
    this process as each job finishes. Ctrl-C / SIGTERM here (KeyboardInterrupt) interrupts the running fits,
    which write their checkpoints, and propagates; running the dataset again resumes them.

    Returns:
        The outcomes, in the order of ``jobs``.
    """
    outcomes: dict[str, Outcome] = {}
    deaths: dict[str, int] = {}
    order = {job.name: position for position, job in enumerate(jobs)}
    pending = list(jobs)
    context = multiprocessing.get_context("spawn")
    while pending:
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=set_threads, initargs=(threads,))
        try:
            futures = {pool.submit(_pool_job, job, out, threads): job for job in pending}
            pending = []
            waiting = set(futures)
            while waiting:
                finished, waiting = wait(waiting, return_when=FIRST_COMPLETED)
                for future in sorted(finished, key=lambda f: order[futures[f].name]):
                    job = futures[future]
                    try:
                        outcome = future.result()
                    except BrokenProcessPool:
                        deaths[job.name] = deaths.get(job.name, 0) + 1
                        if deaths[job.name] <= RETRIES_AFTER_A_DEAD_WORKER:
                            pending.append(job)
                            continue
                        outcome = Outcome.failed(job, "its worker process died (killed, out of memory or a crash)")
                    outcomes[job.name] = outcome
                    on_outcome(outcome)
        except BaseException:
            _stop_workers(pool)
            raise
        pool.shutdown(wait=True)
    return [outcomes[job.name] for job in jobs]
