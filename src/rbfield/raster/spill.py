"""An image-sized array on disk that the process never maps.

A render of a gigapixel image (3 GB as 8-bit RGB) has to wait somewhere
between being scored and being written out. A ``numpy.memmap`` would do, but
every page it touches stays mapped into the process and counts in its
resident memory until the mapping is closed, so the whole render ends up
"in memory" after all. :class:`SpillArray` reads and writes regions with
``pread``/``pwrite`` instead: the data passes through the kernel's page
cache, which the system reclaims as it needs, and the process holds only the
region it asked for.

It supports just what the writers use: ``shape``, ``dtype``, ``ndim``,
``nbytes`` and 2-D slicing ``array[y0:y1, x0:x1]`` (read, giving a new
ndarray) and ``array[y0:y1, x0:x1] = block`` (write).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np


class SpillArray:
    """An (H, W, C) array of a fixed dtype in a temporary file.

    Args:
        folder: where the file goes (it is removed by :meth:`close`).
        shape: (H, W, C).
        dtype: element type, e.g. ``np.uint8``.

    Reads of never-written regions give zeros. Use as a context manager or
    call :meth:`close`.
    """

    def __init__(self, folder: str | os.PathLike, shape: tuple[int, int, int], dtype):
        self.shape = tuple(int(side) for side in shape)
        self.dtype = np.dtype(dtype)
        self.ndim = 3
        self.nbytes = int(np.prod(self.shape)) * self.dtype.itemsize
        self._row_bytes = self.shape[1] * self.shape[2] * self.dtype.itemsize
        handle, name = tempfile.mkstemp(dir=folder, prefix=".spill-")
        self._path = Path(name)
        self._fd = handle
        try:
            os.ftruncate(self._fd, self.nbytes)
        except OSError:
            self.close()
            raise

    def __enter__(self) -> SpillArray:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Close and delete the file (safe to call twice)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            self._path.unlink(missing_ok=True)

    def _region(self, key) -> tuple[int, int, int, int]:
        """(y0, y1, x0, x1) of a ``[y0:y1, x0:x1]`` key, clipped as NumPy clips."""
        if not (isinstance(key, tuple) and len(key) == 2 and all(isinstance(part, slice) for part in key)):
            raise TypeError("a SpillArray is indexed by two slices, array[y0:y1, x0:x1]")
        rows, cols = key
        if rows.step not in (None, 1) or cols.step not in (None, 1):
            raise TypeError("a SpillArray's slices cannot have a step")
        y0, y1, _ = rows.indices(self.shape[0])
        x0, x1, _ = cols.indices(self.shape[1])
        return y0, max(y0, y1), x0, max(x0, x1)

    def _offset(self, row: int, col: int) -> int:
        return row * self._row_bytes + col * self.shape[2] * self.dtype.itemsize

    def __getitem__(self, key) -> np.ndarray:
        y0, y1, x0, x1 = self._region(key)
        out = np.empty((y1 - y0, x1 - x0, self.shape[2]), self.dtype)
        if out.size == 0:
            return out
        if x0 == 0 and x1 == self.shape[1]:
            _read_exactly(self._fd, memoryview(out).cast("B"), self._offset(y0, 0))
        else:
            for index, row in enumerate(range(y0, y1)):
                _read_exactly(self._fd, memoryview(out[index]).cast("B"), self._offset(row, x0))
        return out

    def __setitem__(self, key, values) -> None:
        y0, y1, x0, x1 = self._region(key)
        block = np.ascontiguousarray(np.broadcast_to(np.asarray(values, self.dtype), (y1 - y0, x1 - x0, self.shape[2])))
        if block.size == 0:
            return
        if x0 == 0 and x1 == self.shape[1]:
            _write_exactly(self._fd, memoryview(block).cast("B"), self._offset(y0, 0))
        else:
            for index, row in enumerate(range(y0, y1)):
                _write_exactly(self._fd, memoryview(block[index]).cast("B"), self._offset(row, x0))


def _read_exactly(fd: int, into: memoryview, offset: int) -> None:
    """Fill ``into`` from the file at ``offset`` (pread may return short counts)."""
    done = 0
    while done < len(into):
        count = os.preadv(fd, [into[done:]], offset + done)
        if count == 0:
            raise OSError(f"spill file ended at byte {offset + done}")
        done += count


def _write_exactly(fd: int, data: memoryview, offset: int) -> None:
    """Write all of ``data`` at ``offset`` (pwrite may write less than asked)."""
    done = 0
    while done < len(data):
        done += os.pwrite(fd, data[done:], offset + done)
