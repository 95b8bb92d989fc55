"""Pieces every task's CLI shares: training settings, field lists, interrupt reports."""

from __future__ import annotations

import sys
from pathlib import Path

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
