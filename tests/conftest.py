"""Shared fixtures: small crops of real photos bundled with scikit-image."""

from __future__ import annotations

import signal

import numpy as np
import pytest
import torch
from skimage import data

from rbfield.signals.image import centre_crop, image_to_float


def pytest_configure(config):
    """Ctrl-C as Python normally takes it, for the tests that send SIGINT, even
    when the suite was started in the background, where shells ignore SIGINT."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def fast_paths_on(monkeypatch):
    """Fast paths enabled even when the suite runs under RBFIELD_DISABLE_FAST=1:
    for the tests that check a fast path against its reference twin."""
    monkeypatch.setenv("RBFIELD_DISABLE_FAST", "0")


@pytest.fixture(scope="module")
def coffee_crop() -> np.ndarray:
    """64x64 RGB float32 crop of scikit-image's coffee photo (a real photograph)."""
    return image_to_float(centre_crop(data.coffee(), 64))


@pytest.fixture(scope="module")
def chelsea_crop_uint8() -> np.ndarray:
    """48x48 RGB uint8 crop of scikit-image's chelsea photo."""
    return centre_crop(data.chelsea(), 48)


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder in which no file can be created: a tmp folder without write permission, or (for
    root, whom permissions do not stop) /sys; skips when there is none."""
    import os
    import tempfile
    from pathlib import Path

    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    candidates = [folder, Path("/sys")] if os.geteuid() == 0 else [folder]
    try:
        for candidate in candidates:
            try:
                tempfile.TemporaryFile(dir=candidate).close()
            except OSError:
                yield candidate
                return
        pytest.skip("no read-only folder here (root ignores permissions and /sys is writable)")
    finally:
        folder.chmod(0o700)
