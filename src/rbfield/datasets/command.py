"""The command line's side of datasets: the ``--threads``, ``--workers`` and ``--ray`` flags, and
``fit``/``compare`` of a folder, glob or manifest (the task commands hand such a PATH to
:func:`run_dataset_command`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rbfield.datasets.inputs import GLOB_CHARACTERS, MANIFEST_EXTENSIONS

#: Command-line flag -> keyword argument of the task's fit function (:func:`rbfield.tasks.sdf.fit_sdf`,
#: :func:`rbfield.tasks.image.fit_image`), for the flags a task has.
TASK_OPTIONS = {
    "sdf": {"res": "mesh_resolution", "min_piece": "min_piece_share", "gradient_step": "gradient_step"}
    | {"metric_samples": "metric_samples", "device": "device", "normals": "normals", "surface": "surface"}
    | {"outliers": "outliers", "denoise": "denoise"},
    "image": {"device": "device"},
}


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    """``--threads N`` (one of the shared training flags)."""
    parser.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="CPU threads of a fit (default: all cores); for a folder of inputs, threads per worker "
        "(default: cores / workers)",
    )


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    """``--workers`` and ``--ray``, for a ``fit``/``compare`` command whose PATH may be a dataset."""
    group = parser.add_argument_group(
        "many inputs (PATH a folder, a quoted glob or a .csv/.jsonl manifest; finished inputs are skipped and "
        "interrupted ones resumed when run again)"
    )
    group.add_argument(
        "--workers", type=int, metavar="N", help="fits at once (default: one per core, at most one per input)"
    )
    group.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="run each fit as a Ray task: on a new local Ray instance, or on the cluster at ADDRESS "
        "('auto': the one this machine belongs to); needs pip install -e .[ray]",
    )


def apply_threads(args: argparse.Namespace) -> None:
    """Use ``--threads`` for this process's fit, if given (:func:`rbfield.ops.set_threads`)."""
    if getattr(args, "threads", None) is not None:
        from rbfield.ops import set_threads

        set_threads(args.threads)


def dataset_name(source: str) -> str:
    """A short name for a dataset: a folder's name, a manifest's stem, or the folder a glob starts in."""
    text = source.rstrip("/")
    if any(c in text for c in GLOB_CHARACTERS):
        leading = []
        for part in Path(text).parts:
            if any(c in part for c in GLOB_CHARACTERS):
                break
            leading.append(part)
        return Path(*leading).name if leading else "dataset"
    path = Path(text)
    return path.stem if path.suffix in MANIFEST_EXTENSIONS else path.name or "dataset"


def _report_interrupt(out: Path) -> None:
    print(
        f"\ninterrupted: finished runs and the running fits' checkpoints are in {out}/; "
        "run the same command again to skip the finished inputs and resume the others",
        file=sys.stderr,
    )


def run_dataset_command(args: argparse.Namespace, task: str, fields: list[str] | None = None) -> int:
    """Fit ``args.field`` (or, for ``compare``, each of ``fields``) to every input of ``args.path`` with the
    command's flags; print where the results are and how many inputs failed.

    Returns:
        The exit status: 0, or 1 when any input failed (its one-line error is in the summary).

    Raises:
        InterruptReported: on Ctrl-C / SIGTERM, once the running fits wrote their checkpoints and the user was
            told how to resume (:func:`rbfield.tasks.common.reporting_interrupts`).
    """
    from rbfield.datasets.engine import compare_dataset, fit_dataset
    from rbfield.tasks.common import reporting_interrupts, resolve_device

    resolve_device(args.device)  # an unavailable --device is refused before any worker starts
    name = dataset_name(args.path)
    default_out = f"runs/compare-{name}" if fields is not None else f"runs/{name}-{args.field}"
    out = Path(getattr(args, "out", None) or default_out)
    options = {keyword: getattr(args, flag) for flag, keyword in TASK_OPTIONS[task].items()}
    settings = {
        "params": args.params,
        "steps": args.steps,
        "time": args.time,
        "seed": args.seed,
        "batch": args.batch,
        "eval_every": args.eval_every,
        "checkpoint_every": args.checkpoint_every,
        "workers": args.workers,
        "threads": args.threads,
        "backend": "local" if args.ray is None else "ray",
        "ray_address": None if args.ray in (None, "local") else args.ray,
        "progress": None if args.quiet else sys.stderr,
        **options,
    }
    with reporting_interrupts(lambda: _report_interrupt(out)):
        if fields is not None:
            result = compare_dataset(args.path, out, task, fields, **settings)
        else:
            result = fit_dataset(args.path, out, task, args.field, **settings)
    if fields is not None:
        print(result.files["markdown"].read_text(), end="")
    print(
        f"{result.count('done')} fitted, {result.count('skipped')} complete before, {result.failed} failed; "
        f"results in {out}/ (summary.csv, summary.jsonl, summary.png, logs/, one run folder per "
        f"{'input and field' if fields is not None else 'input'})"
    )
    return 1 if result.failed else 0
