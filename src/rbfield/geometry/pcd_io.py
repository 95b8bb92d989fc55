"""Reading Point Cloud Library (PCD) files, versions 0.6 and 0.7.

The header names the fields (FIELDS), their byte sizes (SIZE), types (TYPE:
F float, I signed, U unsigned) and element counts (COUNT), the number of
points (POINTS, or WIDTH x HEIGHT) and the data's encoding (DATA ``ascii`` or
``binary``: little-endian records, one per point). Only ``x y z`` and,
if all three are present, ``normal_x normal_y normal_z`` are read; other fields
(colour, intensity, curvature, padding) are skipped. ``binary_compressed`` data
is refused. A point whose x, y or z is NaN is the format's mark of "no
measurement" (an organised cloud from a depth camera keeps one per pixel): such
points are dropped, with a warning that counts them.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from rbfield.errors import RbfieldError, ShapeWarning

_TYPES = {("F", 4): "<f4", ("F", 8): "<f8", ("I", 1): "i1", ("I", 2): "<i2", ("I", 4): "<i4", ("I", 8): "<i8"}
_TYPES |= {("U", 1): "u1", ("U", 2): "<u2", ("U", 4): "<u4", ("U", 8): "<u8"}
_HEADER_KEYS = ("VERSION", "FIELDS", "SIZE", "TYPE", "COUNT", "WIDTH", "HEIGHT", "VIEWPOINT", "POINTS", "DATA")


def read_pcd(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """The points (N, 3) float64 and normals (N, 3) float64 or None of a PCD file.

    Points with a NaN coordinate are dropped (see the module's docstring).

    Raises:
        RbfieldError: a malformed header, no x y z fields, binary_compressed data,
            fewer data than the header declares, or no point with x y z all measured.
    """
    path = Path(path)
    raw = path.read_bytes()
    header, offset = _header(raw, path)
    fields = header["FIELDS"]
    sizes = [int(word) for word in header.get("SIZE", ["4"] * len(fields))]
    types = header.get("TYPE", ["F"] * len(fields))
    counts = [int(word) for word in header.get("COUNT", ["1"] * len(fields))]
    if not len(fields) == len(sizes) == len(types) == len(counts):
        raise RbfieldError(f"{path}: the PCD header's FIELDS, SIZE, TYPE and COUNT have different lengths")
    if not {"x", "y", "z"} <= set(fields):
        raise RbfieldError(f"{path}: the PCD file has no x y z fields (it has {' '.join(fields)})")
    n_points = _point_count(header, path)
    encoding = header["DATA"][0].lower()
    if encoding == "ascii":
        columns = _ascii_columns(raw[offset:], n_points, sum(counts), path)
    elif encoding == "binary":
        columns = _binary_columns(raw[offset:], n_points, fields, sizes, types, counts, path)
    elif encoding == "binary_compressed":
        raise RbfieldError(
            f"{path}: binary_compressed PCD is not supported; re-save it as ascii or binary "
            "(e.g. pcl_convert_pcd_ascii_binary IN OUT 1)"
        )
    else:
        raise RbfieldError(f"{path}: unknown PCD DATA encoding {encoding!r}; expected ascii or binary")
    starts = dict(zip(fields, np.cumsum([0, *counts[:-1]])))
    columns = _measured_points(columns, [starts[axis] for axis in "xyz"], path)
    points = columns[:, [starts[axis] for axis in "xyz"]].astype(np.float64)
    normal_fields = ("normal_x", "normal_y", "normal_z")
    if not set(normal_fields) <= set(fields):
        return points, None
    return points, columns[:, [starts[field] for field in normal_fields]].astype(np.float64)


def _measured_points(columns: np.ndarray, xyz: list[int], path: Path) -> np.ndarray:
    """The rows of ``columns`` (N, fields) whose x y z columns hold no NaN, with a warning if any are dropped."""
    unmeasured = np.isnan(columns[:, xyz]).any(axis=1)
    n_dropped = int(unmeasured.sum())
    if n_dropped == 0:
        return columns
    if n_dropped == len(columns):
        raise RbfieldError(f"{path}: every one of the {len(columns)} points has a NaN coordinate (none was measured)")
    warnings.warn(
        f"{path}: dropped {n_dropped} of {len(columns)} points with NaN coordinates (PCD's unmeasured points)",
        ShapeWarning,
        stacklevel=3,
    )
    return columns[~unmeasured]


def _header(raw: bytes, path: Path) -> tuple[dict[str, list[str]], int]:
    """The header's entries (key -> words) and the byte offset where the data start."""
    header, offset = {}, 0
    while "DATA" not in header:
        end = raw.find(b"\n", offset)
        if end < 0:
            raise RbfieldError(f"{path}: not a PCD file (the header has no DATA line)")
        line = raw[offset:end].decode("ascii", errors="replace").split("#", 1)[0].split()
        offset = end + 1
        if not line:
            continue
        key = line[0].upper()
        if key not in _HEADER_KEYS:
            raise RbfieldError(f"{path}: not a PCD file (unexpected header line {' '.join(line)[:60]!r})")
        header[key] = line[1:]
    if "FIELDS" not in header or not header["DATA"]:
        raise RbfieldError(f"{path}: the PCD header lacks FIELDS or the DATA encoding")
    return header, offset


def _point_count(header: dict[str, list[str]], path: Path) -> int:
    try:
        if "POINTS" in header:
            return int(header["POINTS"][0])
        return int(header["WIDTH"][0]) * int(header.get("HEIGHT", ["1"])[0])
    except (KeyError, IndexError, ValueError):
        raise RbfieldError(f"{path}: the PCD header gives no point count (POINTS or WIDTH and HEIGHT)") from None


def _ascii_columns(data: bytes, n_points: int, n_columns: int, path: Path) -> np.ndarray:
    """(n_points, n_columns) float64 from whitespace-separated rows."""
    rows = [line.split() for line in data.decode("ascii", errors="replace").splitlines() if line.strip()]
    if len(rows) < n_points:
        raise RbfieldError(f"{path}: the PCD header declares {n_points} points but the file holds {len(rows)}")
    try:
        columns = np.array([[float(word) for word in row] for row in rows[:n_points]], dtype=np.float64)
    except ValueError:
        raise RbfieldError(f"{path}: the PCD data rows do not all hold {n_columns} numbers") from None
    if columns.ndim != 2 or columns.shape[1] != n_columns:
        raise RbfieldError(f"{path}: the PCD data rows do not all hold {n_columns} numbers")
    return columns.reshape(n_points, n_columns)


def _binary_columns(
    data: bytes,
    n_points: int,
    fields: list[str],
    sizes: list[int],
    types: list[str],
    counts: list[int],
    path: Path,
) -> np.ndarray:
    """(n_points, sum(counts)) float64 from packed little-endian records."""
    try:
        dtypes = [np.dtype(_TYPES[(kind.upper(), size)]) for kind, size in zip(types, sizes)]
    except KeyError:
        raise RbfieldError(f"{path}: unsupported PCD field type/size in TYPE {types} SIZE {sizes}") from None
    record = np.dtype([(f"f{i}", dtype, (count,)) for i, (dtype, count) in enumerate(zip(dtypes, counts))])
    if len(data) < n_points * record.itemsize:
        raise RbfieldError(
            f"{path}: the PCD header declares {n_points} points of {record.itemsize} bytes but the file holds "
            f"{len(data)} bytes of data"
        )
    records = np.frombuffer(data, dtype=record, count=n_points)
    return np.concatenate([records[f"f{i}"].astype(np.float64) for i in range(len(fields))], axis=1)
