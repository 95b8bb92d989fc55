"""The ``rbfield`` command line: ``rbfield VERB KIND ...`` (e.g. ``fit image``).

Each module in :mod:`rbfield.commands` registers its task's commands (see :data:`TASKS`); a command's
work is imported only when it runs, so ``--help`` does not load PyTorch. Every
user-facing problem (bad file, unknown field, tiny budget, ...) is printed as
one ``error:`` line with exit status 2 and no traceback. Ctrl-C (or SIGTERM,
e.g. from a job scheduler) during a fit saves a resumable checkpoint, and the
command says what it kept (``tasks.common.reporting_interrupts``); during any
other command (mesh export, rendering, evaluation) it prints ``interrupted``.
Either way the exit status is 130 and no file is left half-written (every
output is written atomically).
"""

from __future__ import annotations

import argparse
import signal
import sys

from rbfield.commands import image, mesh, nerf, sdf
from rbfield.datasets.command import add_threads_argument, apply_threads
from rbfield.errors import RbfieldError
from rbfield.tasks.common import InterruptReported, add_device_argument, reporting_interrupts

#: The command modules of the tasks; each adds its commands with ``register(verbs, commands)``.
#: A new task is one more entry.
TASKS = (image, sdf, nerf)

VERBS = {
    "fit": "fit a field to a signal",
    "render": "sample a fitted field",
    "eval": "score a fitted field against a signal",
    "compare": "fit several fields side by side at one budget",
    "export": "export a fitted field (e.g. a mesh)",
}


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one ``error:`` line on stderr (exit status 2), like
    every other bad input; ``--help`` still shows the usage."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message}; see {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    from rbfield import __version__

    parser = OneLineParser(
        prog="rbfield", description="Fit compact neural fields (NeuRBF and baselines) on a plain CPU."
    )
    parser.add_argument("--version", action="version", version=f"rbfield {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    verbs = {
        verb: commands.add_parser(verb, help=help_text).add_subparsers(dest="kind", required=True)
        for verb, help_text in VERBS.items()
    }
    for task in TASKS:
        task.register(verbs, commands)
    mesh.register(verbs)
    _add_work_options_everywhere(
        [*commands.choices.values(), *(kind for verb in verbs.values() for kind in verb.choices.values())]
    )
    return parser


def _add_work_options_everywhere(parsers: list[argparse.ArgumentParser]) -> None:
    """``--threads`` and ``--device`` on every command that runs work, where its module did not add them."""
    for parser in parsers:
        if any(isinstance(action, argparse._SubParsersAction) for action in parser._actions):
            continue
        if "--threads" not in parser._option_string_actions:
            add_threads_argument(parser)
        if "--device" not in parser._option_string_actions:
            add_device_argument(parser)


def one_line(message: str) -> str:
    """A message on one line: line breaks inside it become "; "."""
    return "; ".join(part.strip() for part in message.splitlines() if part.strip())


def _interrupt_on_sigterm(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    from rbfield.ops import keep_freed_memory_mapped

    keep_freed_memory_mapped()  # the command owns its process; the library leaves malloc alone
    parser = build_parser()
    args = parser.parse_args(argv)
    apply_threads(args)
    signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
    try:
        # Commands whose interruption keeps something report it themselves; any other just says so.
        with reporting_interrupts(lambda: print("\ninterrupted", file=sys.stderr)):
            return args.handler(args)
    except RbfieldError as error:
        print(f"error: {one_line(str(error))}", file=sys.stderr)
        return 2
    except InterruptReported:
        return 130


if __name__ == "__main__":
    sys.exit(main())
