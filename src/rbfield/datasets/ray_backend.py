"""Run a dataset's jobs on Ray: each fit is one Ray task, on a local Ray instance or an existing cluster.

A task asks Ray for ``num_cpus`` = its threads; that only schedules, so the task sets its thread counts itself
(:func:`rbfield.datasets.runner.run_job` calls :func:`rbfield.ops.set_threads` first) and gets the thread
variables and OpenMP's passive wait policy in its environment. The inputs are files that each task reads, so
nothing large passes through Ray's object store; on a cluster of several machines the inputs and the output
folder must be on a file system every node sees. The run folders and outcomes are those of the local pool.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from rbfield.datasets.inputs import Job
from rbfield.datasets.runner import RETRIES_AFTER_A_DEAD_WORKER, Outcome, run_job
from rbfield.errors import RbfieldError
from rbfield.ops import THREAD_VARIABLES, thread_environment

INSTALL_HINT = "the Ray backend needs the ray package: pip install -e .[ray]"


def import_ray():
    """The ``ray`` module, or an RbfieldError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise RbfieldError(INSTALL_HINT) from None
    return ray


def task_environment(threads: int) -> dict:
    """Environment variables of a Ray task with ``threads`` threads: the thread-pool sizes and OpenMP's waiting."""
    environment = thread_environment(threads)
    waiting = [key for key in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT") if key in environment]
    return {key: environment[key] for key in (*THREAD_VARIABLES, *waiting)}


def run_ray(
    jobs: list[Job],
    out: str | Path,
    threads: int,
    on_outcome: Callable[[Outcome], None],
    address: str | None = None,
    num_cpus: int | None = None,
) -> list[Outcome]:
    """Run ``jobs`` as Ray tasks of ``threads`` CPUs each.

    Args:
        jobs, out, threads, on_outcome: as :func:`rbfield.datasets.runner.run_local`.
        address: a Ray cluster's address, or "auto" for the one this machine belongs to; None starts a local
            Ray instance (on 127.0.0.1, without the dashboard) for the run and stops it afterwards. If Ray is
            already initialised in this process, that instance is used and left running.
        num_cpus: CPUs of a local Ray instance (default: all cores).

    Returns:
        The outcomes, in the order of ``jobs``. A task whose worker died is retried once (it resumes from its
        checkpoint), then fails with Ray's one-line reason.
    """
    ray = import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        settings = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
        if address is None:
            ray.init(num_cpus=num_cpus or os.cpu_count(), **settings)
        else:
            ray.init(address=address, **settings)
    try:
        remote = ray.remote(run_job).options(
            num_cpus=threads,
            max_retries=RETRIES_AFTER_A_DEAD_WORKER,
            runtime_env={"env_vars": task_environment(threads)},
        )
        out = str(Path(out).resolve())
        pending = {remote.remote(job, out, threads): job for job in jobs}
        outcomes: dict[str, Outcome] = {}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(ready[0])
            try:
                outcome = ray.get(ready[0])
            except ray.exceptions.RayError as error:
                first_line = (str(error).strip().splitlines() or ["(no message)"])[0]
                outcome = Outcome.failed(job, f"Ray: {type(error).__name__}: {first_line}")
            outcomes[job.name] = outcome
            on_outcome(outcome)
    finally:
        if started_here:
            ray.shutdown()
    return [outcomes[job.name] for job in jobs]
