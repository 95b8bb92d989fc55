"""What every task shares: one set of training flags, argument types, field lists, interrupt reports."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rbfield.datasets.command import add_threads_argument, apply_threads
from rbfield.errors import RbfieldError

if TYPE_CHECKING:
    import torch

#: The choices of ``--device``.
DEVICES = ("auto", "cpu", "cuda", "mps")
#: Default of ``--checkpoint-seconds``: a kill loses at most this much training.
CHECKPOINT_SECONDS = 60.0


@dataclass(frozen=True)
class TrainingDefaults:
    """A task's defaults for the shared training flags.

    Attributes:
        params: the ``--params`` budget, e.g. "128k".
        steps: training steps when neither ``--steps`` nor ``--time`` is given.
        batch: samples per step; ``batch_unit`` names them ("pixels", "points", "rays").
        eval_every: steps between quick evaluations; ``eval_what`` says what they measure.
    """

    params: str
    steps: int
    batch: int
    batch_unit: str
    eval_every: int
    eval_what: str


def number_in(low: float, high: float, meaning: str, convert=float):
    """An argparse type: ``convert(text)`` (float or int) in [low, high]; otherwise "must be <meaning>"."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = float("nan")
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {meaning}, got {text!r}")
        return value

    return parse


share_in_unit_interval = number_in(0.0, 1.0, "a share between 0 and 1")


def add_min_piece_argument(parser: argparse.ArgumentParser) -> None:
    """``--min-piece``: which connected pieces of an extracted mesh are kept."""
    from rbfield.geometry.mesh_pieces import MIN_PIECE_SHARE

    parser.add_argument(
        "--min-piece",
        type=share_in_unit_interval,
        default=MIN_PIECE_SHARE,
        metavar="SHARE",
        help="drop mesh pieces with less than this share of the largest piece's area "
        f"(floaters; default {MIN_PIECE_SHARE:g}, 0 keeps every piece)",
    )


#: Largest finite float: the upper end of ranges that must exclude infinity.
MAX_SECONDS = sys.float_info.max
positive_int = number_in(1, math.inf, "a positive integer", int)
count_or_off = number_in(0, math.inf, "0 (off) or a positive integer", int)
positive_seconds = number_in(sys.float_info.min, MAX_SECONDS, "a positive, finite number of seconds")


def add_training_arguments(parser: argparse.ArgumentParser, defaults: TrainingDefaults) -> None:
    """The training flags of every ``fit`` and ``compare`` command (each value checked as it is read)."""
    parser.add_argument(
        "--params",
        default=defaults.params,
        help=f"trainable-parameter budget, e.g. 128k or 1.5M (default {defaults.params})",
    )
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=positive_int, help=f"training steps (default {defaults.steps})")
    budget.add_argument(
        "--time", type=positive_seconds, help="training time budget in seconds (finite), instead of --steps"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--batch",
        type=positive_int,
        default=defaults.batch,
        help=f"{defaults.batch_unit} per step (default {defaults.batch})",
    )
    parser.add_argument(
        "--eval-every",
        type=count_or_off,
        default=defaults.eval_every,
        help=f"steps between {defaults.eval_what} (default {defaults.eval_every}; 0: only at the end)",
    )
    parser.add_argument(
        "--checkpoint-every",
        type=count_or_off,
        default=1000,
        help="steps between checkpoints (default 1000; 0: only at the end)",
    )
    parser.add_argument(
        "--checkpoint-seconds",
        type=number_in(0.0, MAX_SECONDS, "0 (off) or a finite number of seconds"),
        default=CHECKPOINT_SECONDS,
        metavar="S",
        help=f"also checkpoint after this many seconds of training (default {CHECKPOINT_SECONDS:g}; 0: off)",
    )
    add_device_argument(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    add_threads_argument(parser)
    parser.set_defaults(default_steps=defaults.steps)


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """``--device`` (see :func:`resolve_device`)."""
    parser.add_argument(
        "--device",
        choices=DEVICES,
        default="auto",
        help="where the field runs: auto (the default: cuda, else mps, else cpu), cpu, cuda or mps",
    )


def add_run_arguments(parser: argparse.ArgumentParser, default_out: str) -> None:
    """``--out``, ``--resume`` and ``--overwrite`` of a ``fit`` command (see :mod:`rbfield.runs`)."""
    parser.add_argument("--out", help=f"run folder (default {default_out})")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue from the checkpoint of an interrupted run (kept beside the run folder) or of a finished one",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a finished run in the run folder")


def add_compare_arguments(parser: argparse.ArgumentParser, inputs: str, fields: str, subject: str) -> None:
    """The input, ``--fields``, ``--out`` and ``--overwrite`` of a ``compare`` command.

    Args:
        inputs: what one input is, e.g. "PNG, JPEG or TIFF image".
        fields: the default comma-separated presets.
        subject: the placeholder of the default output folder, ``runs/compare-<subject>``.
    """
    parser.add_argument("path", help=f"{inputs}, or a folder, quoted glob or .csv/.jsonl manifest")
    parser.add_argument("--fields", default=fields, help="comma-separated presets")
    parser.add_argument("--out", help=f"output folder (default runs/compare-<{subject}>)")
    parser.add_argument("--overwrite", action="store_true", help="replace finished runs in the output folder")


def train_config(args):
    """TrainConfig from the flags of :func:`add_training_arguments` (``--threads`` takes effect here)."""
    from rbfield.train import TrainConfig

    apply_threads(args)
    steps = args.steps
    if steps is None and args.time is None:
        steps = args.default_steps
    return TrainConfig(
        steps=steps,
        time_budget=args.time,
        seed=args.seed,
        eval_every=args.eval_every,
        checkpoint_every=args.checkpoint_every,
        checkpoint_seconds=args.checkpoint_seconds,
        progress=not args.quiet,
    )


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """The torch device for ``--device``: "auto" is cuda if available, else mps if available, else cpu.

    Args:
        name: "auto", "cpu", "cuda", "mps", or a device of those types (e.g. "cuda:1", torch.device("mps")).

    Raises:
        RbfieldError: an unknown name, or a device this PyTorch cannot use here.
    """
    import torch

    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": _mps_available()}
    if str(name) == "auto":
        return torch.device(next(kind for kind in ("cuda", "mps", "cpu") if available[kind]))
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in available:
        raise RbfieldError(f"unknown device {str(name)!r}; choose from {', '.join(DEVICES)}")
    if not available[device.type]:
        raise RbfieldError(
            f"--device {name}: this PyTorch ({torch.__version__}) sees no {device.type.upper()} device; "
            "use --device cpu or --device auto"
        )
    return device


def _mps_available() -> bool:
    """Whether this PyTorch can use Apple's MPS device (builds without the backend say no)."""
    import torch

    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def parameter_summary(field_name: str, counts: dict[str, int]) -> str:
    """ "neurbf: 127,973 trainable + 21,084 frozen parameters", from :meth:`FieldBase.param_counts`."""
    return (
        f"{field_name}: {counts['trainable']:,} trainable + {counts['total'] - counts['trainable']:,} frozen parameters"
    )


def format_metric(value, digits: int) -> str:
    """A metric with ``digits`` decimals, or "n/a" where it is None (e.g. no mesh)."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def parse_field_names(text: str, known) -> list[str]:
    """ "a,b" -> ["a", "b"], each one of ``known``; a clear error otherwise."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise RbfieldError(f"unknown field(s) {', '.join(unknown) or '(none given)'}; choose from: {', '.join(known)}")
    return names


def log_resume(field, run, log) -> None:
    """Check that ``field`` can continue from the run's checkpoint (before anything is written) and say from where."""
    from rbfield.train import resume_state

    checkpoint = run.resume_checkpoint()
    state = resume_state(field, checkpoint)
    log(f"resuming from step {state['step']} ({state['seconds']:.1f} s of training) of {checkpoint}")


def report_interrupt(out: Path) -> None:
    """Tell the user, on stderr, whether an interrupted fit left a checkpoint to resume: in the run's
    staging folder (:func:`rbfield.runs.staging_path`), or in the run folder itself."""
    from rbfield.runs import staging_path

    kept = [folder / "checkpoint.pt" for folder in (staging_path(out), Path(out))]
    kept = [path for path in kept if path.exists()]
    if kept:
        print(
            f"\ninterrupted: checkpoint saved in {kept[0]}; continue with the same command plus --resume",
            file=sys.stderr,
        )
    else:
        print("\ninterrupted before training started; nothing to resume", file=sys.stderr)


def report_finished_runs(out: Path) -> None:
    """Tell the user, on stderr, where an interrupted comparison left its finished runs."""
    print(f"\ninterrupted: finished runs are in {out}/", file=sys.stderr)


class InterruptReported(Exception):
    """Raised by :func:`reporting_interrupts` once the user has been told what an
    interruption kept; ``rbfield.cli.main`` turns it into exit status 130."""


def is_interrupt(error: BaseException) -> bool:
    """Whether ``error`` is Ctrl-C / SIGTERM: a KeyboardInterrupt, or the
    SystemError that Numba's dispatch wraps around one raised inside it."""
    if isinstance(error, KeyboardInterrupt):
        return True
    return isinstance(error, SystemError) and isinstance(error.__cause__ or error.__context__, KeyboardInterrupt)


@contextmanager
def reporting_interrupts(report: Callable[[], None]) -> Iterator[None]:
    """Inside the block, Ctrl-C / SIGTERM (see :func:`is_interrupt`) calls
    ``report()``, which tells the user on stderr what was kept, then raises
    :class:`InterruptReported`. Any other error passes through unchanged."""
    try:
        yield
    except (KeyboardInterrupt, SystemError) as error:
        if not is_interrupt(error):
            raise
        report()
        raise InterruptReported from None


_BYTE_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_bytes(text: str) -> int:
    """A memory size: "8G", "512M", "1.5G" (K, M, G, T: powers of 1024; a trailing B is allowed) or bytes."""
    cleaned = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = cleaned[-1:] if cleaned[-1:] in _BYTE_UNITS else ""
    try:
        size = float(cleaned[: len(cleaned) - len(unit)]) * _BYTE_UNITS[unit]
    except ValueError:
        size = float("nan")
    if not size > 0:
        raise RbfieldError(f"cannot read memory size {text!r}; write e.g. 8G, 512M or a number of bytes")
    return int(size)


def add_memory_argument(parser: argparse.ArgumentParser) -> None:
    """``--max-memory``: a cap on the bytes an input image's pixels may take."""
    parser.add_argument(
        "--max-memory",
        help="refuse an image whose pixels would take more than this, e.g. 8G or 512M (K/M/G/T are powers of "
        "1024; default: the memory available). Caps the image, held as 1-2 bytes a value, not training",
    )


def peak_rss_bytes() -> int:
    """The process's peak resident memory so far, in bytes (ru_maxrss: KiB on Linux, bytes on macOS)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)
