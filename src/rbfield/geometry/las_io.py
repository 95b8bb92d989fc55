"""Reading ASPRS LAS files and their compressed form, LAZ (lidar point clouds).

Read with the optional ``laspy`` package, and LAZ with its ``lazrs`` backend
(``pip install 'rbfield[las]'``). Any LAS version (1.0 to 1.4) and point format
(0 to 10). The coordinates are the file's real-world ones: the stored integers
times the header's scale plus its offset, in float64. LAS has no standard
normals: they are read from extra dimensions named ``normal_x normal_y normal_z``
or ``nx ny nz`` (in any case, with or without the underscore, e.g. PDAL's
``NormalX``) when all three are present; otherwise there are none. Other
dimensions (intensity, returns, colour, GPS time) are ignored.

Points classified as noise by the standard, ASPRS class 7 (low point, noise) and
class 18 (high noise; named in LAS 1.4, and used by writers of older versions
too), are dropped, with a warning that counts them.

The points are read chunk by chunk (:data:`CHUNK_POINTS` at a time) into one
preallocated array, so reading takes about 24 bytes per point (48 with normals)
plus one chunk, whatever the file's size.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from rbfield.errors import RbfieldError, ShapeWarning
from rbfield.memory import amount, available_memory

#: Points decoded at a time.
CHUNK_POINTS = 1_000_000
#: ASPRS classes that mark noise: 7 (low point, noise) and 18 (high noise).
NOISE_CLASSES = (7, 18)
#: Extra-dimension names of normals, lower case without underscores or spaces.
_NORMAL_NAMES = (("normalx", "normaly", "normalz"), ("nx", "ny", "nz"))
_INSTALL = "pip install 'rbfield[las]'"


def read_las(path: str | Path, chunk_points: int = CHUNK_POINTS) -> tuple[np.ndarray, np.ndarray | None]:
    """The points (N, 3) float64, in the file's real-world units, and normals (N, 3) float64 or None of a LAS
    or LAZ file.

    Points of the noise classes 7 and 18 are dropped (see the module's docstring).

    Args:
        path: the file; chunk_points: points decoded at a time (memory is one chunk beyond the result).

    Raises:
        RbfieldError: laspy missing, not a LAS file, a truncated or malformed header, no points, fewer point
            records than the header declares, more points than fit in the memory available, truncated or
            corrupt LAZ data, a LAZ file without a LAZ backend, or every point classified as noise.
    """
    path = Path(path)
    laspy = _laspy(path)
    with path.open("rb") as file:
        if file.read(4) != b"LASF":
            raise RbfieldError(f"{path}: not a LAS or LAZ file (it does not start with the LASF signature)")
    try:
        reader = laspy.open(path)
    except (laspy.errors.LaspyException, ValueError, EOFError) as error:
        raise RbfieldError(f"{path}: the LAS header is truncated or malformed ({error})") from None
    with reader:
        header = reader.header
        n_points = int(header.point_count)
        if n_points == 0:
            raise RbfieldError(f"{path}: the file holds no points (its header declares 0)")
        if header.are_points_compressed and not laspy.LazBackend.detect_available():
            raise RbfieldError(f"{path}: the points are LAZ-compressed and no LAZ backend is installed: {_INSTALL}")
        _check_size(path, n_points, header, compressed=header.are_points_compressed)
        normal_names = _normal_dimensions(list(header.point_format.dimension_names))
        _check_memory(path, n_points, 48 if normal_names else 24)
        points = np.empty((n_points, 3), dtype=np.float64)
        normals = np.empty((n_points, 3), dtype=np.float64) if normal_names else None
        n_read = n_kept = 0
        try:
            for chunk in reader.chunk_iterator(chunk_points):
                keep = ~np.isin(np.asarray(chunk.classification), NOISE_CLASSES)
                count = int(keep.sum())
                for axis, name in enumerate("xyz"):
                    points[n_kept : n_kept + count, axis] = np.asarray(chunk[name], dtype=np.float64)[keep]
                for axis, name in enumerate(normal_names):
                    normals[n_kept : n_kept + count, axis] = np.asarray(chunk[name], dtype=np.float64)[keep]
                n_read, n_kept = n_read + len(chunk), n_kept + count
        except (RuntimeError, laspy.errors.LaspyException) as error:  # lazrs raises a RuntimeError
            raise RbfieldError(
                f"{path}: the point data are truncated or corrupt: the header declares {n_points} points and "
                f"decoding failed after {n_read} of them ({error})"
            ) from None
    if n_read < n_points:
        raise RbfieldError(f"{path}: the LAS header declares {n_points} points but the file holds {n_read}")
    n_dropped = n_read - n_kept
    if n_dropped == n_read:
        raise RbfieldError(f"{path}: every one of the {n_read} points is classified as noise (class 7 or 18)")
    if n_dropped:
        warnings.warn(
            f"{path}: dropped {n_dropped} of {n_read} points classified as noise (ASPRS classes 7 and 18)",
            ShapeWarning,
            stacklevel=2,
        )
    return points[:n_kept], None if normals is None else normals[:n_kept]


def _laspy(path: Path):
    """The laspy module, or an error that says how to install it."""
    try:
        import laspy
    except ImportError:
        raise RbfieldError(f"{path}: reading LAS and LAZ files needs the optional laspy package: {_INSTALL}") from None
    return laspy


def _check_size(path: Path, n_points: int, header, compressed: bool) -> None:
    """Refuse a file that ends before its point data start or, uncompressed, before its last point record."""
    size, start, record = path.stat().st_size, header.offset_to_point_data, header.point_format.size
    if size <= start:
        raise RbfieldError(
            f"{path}: the file ends at byte {size}, before its point data start (byte {start}): it is truncated"
        )
    n_held = (size - start) // record
    if not compressed and n_held < n_points:
        raise RbfieldError(
            f"{path}: the LAS header declares {n_points} points of {record} bytes but the file holds "
            f"{n_held}: it is truncated or its header is wrong"
        )


def _check_memory(path: Path, n_points: int, bytes_per_point: int) -> None:
    """Refuse, before allocating, a point count whose arrays would not fit in the memory available (a corrupt
    LAZ header can declare any count)."""
    need, have = n_points * bytes_per_point, available_memory()
    if need > have:
        raise RbfieldError(
            f"{path}: the header declares {n_points:,} points: {amount(need)} as float64, {amount(have)} "
            "available; thin the cloud first or free memory"
        )


def _normal_dimensions(names: list[str]) -> tuple[str, ...]:
    """The names of the point format's three normal dimensions, or () if it lacks them."""
    by_key = {name.lower().replace("_", "").replace(" ", ""): name for name in names}
    for keys in _NORMAL_NAMES:
        if all(key in by_key for key in keys):
            return tuple(by_key[key] for key in keys)
    return ()
