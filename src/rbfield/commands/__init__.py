"""The command line's commands: each module registers its task's commands and their flags.

These modules import no PyTorch and none of the library, so ``rbfield --help`` is quick: a command's
work lives in its task module (:mod:`rbfield.tasks`), imported only when the command runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from importlib import import_module


def handler(module: str, function: str) -> Callable[[argparse.Namespace], int]:
    """The command function ``function`` of ``module`` (e.g. "rbfield.tasks.image", "cmd_fit_image"),
    imported when the command runs; it takes the parsed arguments and returns the exit status."""

    def run(args: argparse.Namespace) -> int:
        return getattr(import_module(module), function)(args)

    run.__qualname__ = f"{module}.{function}"
    return run
