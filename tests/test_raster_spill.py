"""SpillArray: regions read back as written, and the data stays out of the process's memory."""

from __future__ import annotations

import numpy as np
import pytest

from rbfield.raster.spill import SpillArray


def resident_bytes() -> int:
    """The process's current resident set (VmRSS), in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def test_regions_read_back_as_a_numpy_array_holds_them(tmp_path):
    rng = np.random.default_rng(0)
    reference = np.zeros((37, 53, 3), np.uint16)
    with SpillArray(tmp_path, reference.shape, np.uint16) as spill:
        for _ in range(40):
            y, x = rng.integers(0, 37), rng.integers(0, 53)
            h, w = rng.integers(1, 20), rng.integers(1, 30)
            block = rng.integers(0, 65535, (min(h, 37 - y), min(w, 53 - x), 3), dtype=np.uint16)
            reference[y : y + h, x : x + w] = block
            spill[y : y + h, x : x + w] = block
        spill[5:9, :] = reference[5:9, :] + 1  # a band of whole rows takes the one-write path
        reference[5:9, :] += 1
        np.testing.assert_array_equal(spill[:, :], reference)
        np.testing.assert_array_equal(spill[3:30, 10:11], reference[3:30, 10:11])
        np.testing.assert_array_equal(spill[30:99, 50:99], reference[30:, 50:])  # clipped as NumPy clips
    assert not list(tmp_path.iterdir()), "the spill file is removed on close"


def test_strided_or_fancy_keys_are_refused(tmp_path):
    with SpillArray(tmp_path, (4, 4, 1), np.uint8) as spill:
        with pytest.raises(TypeError):
            spill[::2, :]
        with pytest.raises(TypeError):
            spill[0]


def test_a_written_render_does_not_stay_in_the_process_memory(tmp_path):
    """A memmap of the same 384 MB keeps every written page resident; the spill keeps none."""
    shape, band = (8192, 16384, 3), 256
    before = resident_bytes()
    with SpillArray(tmp_path, shape, np.uint8) as spill:
        block = np.full((band, shape[1] // 2, 3), 7, np.uint8)
        for top in range(0, shape[0], band):
            spill[top : top + band, : shape[1] // 2] = block
            spill[top : top + band, shape[1] // 2 :] = block
        grown = resident_bytes() - before
        assert spill[8000:8001, 100:101].tolist() == [[[7, 7, 7]]]
    assert grown < 64 * 2**20, f"resident memory grew by {grown / 2**20:.0f} MB while writing a 384 MB spill"
