"""The command line's help: quick, because building the parser imports no PyTorch."""

from __future__ import annotations

import subprocess
import sys

#: Builds the full parser, prints the help of every command and subcommand (each ``--help`` exits), and
#: prints how many help texts it printed and whether torch was imported.
HELP_EVERYWHERE = """
import argparse, contextlib, io, sys
from rbfield.cli import build_parser

def every_parser(parser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from every_parser(child)

printed = 0
for parser in every_parser(build_parser()):
    with contextlib.redirect_stdout(io.StringIO()) as text:
        try:
            parser.parse_args(["--help"])
        except SystemExit:
            pass
    printed += "usage:" in text.getvalue()
print(printed, "torch" in sys.modules)
"""


def test_help_of_every_command_imports_no_torch():
    result = subprocess.run([sys.executable, "-c", HELP_EVERYWHERE], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    printed, torch_imported = result.stdout.split()
    assert int(printed) >= 18  # rbfield, 5 verbs, demo and their 11 kinds
    assert torch_imported == "False"


def test_preset_names_shown_in_help_are_the_registry_presets():
    from rbfield.fields import presets_for
    from rbfield.fields.names import PRESET_NAMES

    assert {task: list(names) for task, names in PRESET_NAMES.items()} == {
        task: presets_for(task) for task in ("image", "sdf", "radiance")
    }
