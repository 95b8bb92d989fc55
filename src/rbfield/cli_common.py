"""Pieces every task's CLI shares: training settings, field lists, interrupt reports."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from rbfield.errors import RbfieldError


def train_config(args, default_steps: int):
    """TrainConfig from parsed --steps/--time/--seed/--eval-every/--checkpoint-every/--quiet."""
    from rbfield.train import TrainConfig

    steps = args.steps
    if steps is None and args.time is None:
        steps = default_steps
    return TrainConfig(
        steps=steps, time_budget=args.time, seed=args.seed, eval_every=args.eval_every,
        checkpoint_every=getattr(args, "checkpoint_every", 1000), progress=not args.quiet,
    )


def parse_field_names(text: str, known) -> list[str]:
    """"a,b" -> ["a", "b"], each one of ``known``; a clear error otherwise."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise RbfieldError(f"unknown field(s) {', '.join(unknown) or '(none given)'}; choose from: {', '.join(known)}")
    return names


def report_interrupt(out: Path) -> None:
    """Tell the user, on stderr, whether an interrupted fit left a checkpoint to resume."""
    if (Path(out) / "checkpoint.pt").exists():
        print(f"\ninterrupted: checkpoint saved in {out}/checkpoint.pt; continue with the same command plus --resume", file=sys.stderr)
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
