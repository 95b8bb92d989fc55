"""Atomic writes: a failure or Ctrl-C mid-write leaves the previous file and no temporary."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from rbfield.errors import RbfieldError
from rbfield.io import atomic_write_bytes, atomic_write_with


def _half_then(error: BaseException):
    def write(temporary: Path) -> None:
        temporary.write_bytes(b"half a mesh")
        raise error

    return write


@pytest.mark.parametrize("error", [KeyboardInterrupt(), RuntimeError("encoder crashed")])
def test_an_interrupted_write_keeps_the_previous_file(tmp_path, error):
    target = tmp_path / "orbit.mp4"
    atomic_write_bytes(target, b"previous")
    with pytest.raises(type(error)):
        atomic_write_with(target, _half_then(error))
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["orbit.mp4"]


def test_a_full_disk_is_one_clear_error(tmp_path):
    target = tmp_path / "mesh.ply"
    atomic_write_bytes(target, b"previous")
    with pytest.raises(
        RbfieldError, match="mesh.ply: No space left on device; the disk is full; the previous file is unchanged"
    ):
        atomic_write_with(target, _half_then(OSError(errno.ENOSPC, "No space left on device")))
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["mesh.ply"]


def test_the_temporary_file_keeps_the_suffix(tmp_path):
    """Encoders such as ffmpeg pick the container from the file name."""
    seen = []
    atomic_write_with(tmp_path / "orbit.mp4", lambda temporary: seen.append(temporary) or temporary.write_bytes(b"x"))
    assert seen[0].suffix == ".mp4" and seen[0].parent == tmp_path
    assert (tmp_path / "orbit.mp4").read_bytes() == b"x"


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        atomic_write_bytes(tmp_path / "metrics.json", b"{}")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "metrics.json").stat().st_mode) == mode


def test_a_field_saved_to_a_file_name_is_a_file(tmp_path):
    from rbfield import SignalSpec, build_field, load_field, save_field

    field = build_field("instant-ngp", SignalSpec("image", 2, 3, (64, 64)), "20k")
    weights = save_field(field, tmp_path / "x.safetensors")
    assert weights == tmp_path / "x.safetensors" and weights.is_file()
    assert (tmp_path / "x.json").is_file()
    assert load_field(weights).config == field.config
