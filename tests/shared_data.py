"""Where the tests find the project's shared real data: the ``shared/data`` folder beside the checkout.

Found from this file, not from the working directory. A test that needs a file
that is missing is skipped with the reason, never failed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _missing(path: Path) -> str:
    return f"shared test data {path.relative_to(SHARED_DATA.parents[1])} is not present beside the checkout"


def shared_path(*parts: str) -> str:
    """The path of a shared data file or folder, as text (whether or not it exists)."""
    return str(SHARED_DATA.joinpath(*parts))


def requires(*parts: str) -> pytest.MarkDecorator:
    """A mark that skips a test (or, as ``pytestmark``, a module) when the shared path is missing."""
    path = SHARED_DATA.joinpath(*parts)
    return pytest.mark.skipif(not path.exists(), reason=_missing(path))


def shared_file(*parts: str) -> str:
    """The path of a shared data file; skips the calling test when it is missing."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(_missing(path))
    return str(path)
