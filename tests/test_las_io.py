"""LAS and LAZ lidar point clouds (rbfield.geometry.las_io), written with laspy from a real scan's points."""

from __future__ import annotations

import struct
import sys
import tracemalloc

import numpy as np
import pytest

from rbfield.datasets.inputs import EXTENSIONS
from rbfield.errors import RbfieldError, ShapeWarning
from rbfield.geometry.las_io import read_las
from rbfield.geometry.shapes_io import PointCloud, load_shape
from shared_data import shared_file

laspy = pytest.importorskip("laspy")

#: Millimetres, as lidar surveys store them, about a projected (UTM-like) origin.
SCALE = 0.001
OFFSET = np.array([512000.0, 4101000.0, 0.0])
#: The kitten (about 0.65 units wide) as a 6.5 m object placed in the survey's coordinates.
PLACEMENT = np.array([512345.678, 4101234.567, 87.654])
NORMALS = ("normal_x", "normal_y", "normal_z")


@pytest.fixture(scope="module")
def kitten():
    """The kitten scan's points in real-world metres (N, 3) and its normals (N, 3)."""
    data = np.loadtxt(shared_file("meshes", "kitten.xyz"))
    return data[:, :3] * 10 + PLACEMENT, data[:, 3:]


def _write(path, points, normals=None, classes=None, names=NORMALS, point_format=3, version="1.2"):
    """A LAS file (LAZ if ``path`` ends in .laz) of the points, normals as float32 extra dimensions ``names``."""
    header = laspy.LasHeader(point_format=point_format, version=version)
    header.scales, header.offsets = np.full(3, SCALE), OFFSET
    if normals is not None:
        header.add_extra_dims([laspy.ExtraBytesParams(name=name, type=np.float32) for name in names])
    las = laspy.LasData(header)
    las.x, las.y, las.z = points.T
    if normals is not None:
        for name, column in zip(names, normals.T):
            las[name] = column
    if classes is not None:
        las.classification = classes
    las.write(str(path))
    return path


def test_las_points_are_the_scans_within_the_scale_quantum(tmp_path, kitten):
    points, _ = kitten
    read, normals = read_las(_write(tmp_path / "kitten.las", points))
    assert normals is None
    assert read.dtype == np.float64 and read.shape == points.shape
    np.testing.assert_allclose(read, points, rtol=0, atol=SCALE / 2 + 1e-9)
    quantised = np.round((points - OFFSET) / SCALE) * SCALE + OFFSET
    np.testing.assert_allclose(read, quantised, rtol=0, atol=1e-9)


def test_laz_equals_las(tmp_path, kitten):
    points, normals = kitten
    las, laz = _write(tmp_path / "k.las", points, normals), _write(tmp_path / "k.laz", points, normals)
    with laspy.open(laz) as reader:
        assert reader.header.are_points_compressed
    assert laz.stat().st_size < las.stat().st_size / 2
    from_las, from_laz = read_las(las), read_las(laz)
    np.testing.assert_array_equal(from_laz[0], from_las[0])
    np.testing.assert_array_equal(from_laz[1], from_las[1])


@pytest.mark.parametrize("names", [NORMALS, ("nx", "ny", "nz"), ("NormalX", "NormalY", "NormalZ")])
def test_extra_dimension_normals_are_read(tmp_path, kitten, names):
    points, normals = kitten
    read, read_normals = read_las(_write(tmp_path / "k.laz", points, normals, names=names))
    np.testing.assert_allclose(read_normals, normals.astype(np.float32), rtol=0, atol=1e-7)
    two_of_three = _write(tmp_path / "two.las", points, normals[:, :2], names=names[:2])
    assert read_las(two_of_three)[1] is None


@pytest.mark.parametrize(("point_format", "version"), [(3, "1.2"), (6, "1.4")])
def test_noise_classes_are_dropped_with_a_count(tmp_path, kitten, point_format, version):
    points, normals = kitten
    classes = np.full(len(points), 2, dtype=np.uint8)  # ground
    classes[::5] = 1  # unclassified: kept
    classes[::9] = 7  # low noise
    classes[::13] = 18  # high noise
    noise = np.isin(classes, (7, 18))
    path = _write(tmp_path / "k.laz", points, normals, classes, point_format=point_format, version=version)
    with pytest.warns(ShapeWarning, match=f"dropped {noise.sum()} of {len(points)} points classified as noise"):
        read, read_normals = read_las(path)
    np.testing.assert_allclose(read, points[~noise], rtol=0, atol=SCALE / 2 + 1e-9)
    np.testing.assert_allclose(read_normals, normals[~noise].astype(np.float32), rtol=0, atol=1e-7)
    all_noise = _write(tmp_path / "noise.las", points[:50], classes=np.full(50, 7, dtype=np.uint8))
    with pytest.raises(RbfieldError, match="every one of the 50 points is classified as noise"):
        read_las(all_noise)


def test_load_shape_reads_a_laz_as_the_same_point_cloud_as_its_xyz(tmp_path, kitten):
    points, normals = kitten
    assert ".las" in EXTENSIONS["sdf"] and ".laz" in EXTENSIONS["sdf"]
    xyz = tmp_path / "k.xyz"
    np.savetxt(xyz, np.hstack([points, normals]), fmt="%.9f")
    from_laz, from_xyz = load_shape(_write(tmp_path / "k.laz", points, normals)), load_shape(xyz)
    assert isinstance(from_laz, PointCloud) and not from_laz.normals_estimated
    assert from_laz.points.shape == from_xyz.points.shape
    np.testing.assert_allclose(from_laz.points, from_xyz.points, rtol=0, atol=SCALE)
    np.testing.assert_allclose(from_laz.normals, from_xyz.normals, rtol=0, atol=1e-6)


def _garbage(path, raw):
    path.write_bytes(b"PK\x03\x04 not a point cloud " * 40)


def _cut_points(path, raw):
    path.write_bytes(raw[: len(raw) * 2 // 3])


def _cut_header(path, raw):
    path.write_bytes(raw[:100])


def _cut_vlrs(path, raw):
    """Cut in the variable-length records between the header (227 bytes) and the points (the LAZ's
    compression record is there)."""
    path.write_bytes(raw[:300])


def _more_declared(path, raw):
    """The LAS 1.2 header's point count (bytes 107-110) raised by 100."""
    raw = bytearray(raw)
    struct.pack_into("<I", raw, 107, struct.unpack_from("<I", raw, 107)[0] + 100)
    path.write_bytes(bytes(raw))


def _absurd_count(path, raw):
    """The header's point count set to 4e9 (a corrupt header can declare anything)."""
    raw = bytearray(raw)
    struct.pack_into("<I", raw, 107, 4_000_000_000)
    path.write_bytes(bytes(raw))


BAD_FILES = {
    "garbage": (_garbage, ".las", "not a LAS or LAZ file"),
    "truncated las": (_cut_points, ".las", r"declares 5210 points of 34 bytes but the file holds 3\d\d\d: it is trunc"),
    "truncated laz": (_cut_points, ".laz", "the point data are truncated or corrupt: the header declares 5210 points"),
    "truncated header": (_cut_header, ".las", r"the LAS header is truncated or malformed \(File is to"),
    "truncated records": (_cut_vlrs, ".laz", r"the file ends at byte 300, before its point data start \(byte \d+\)"),
    "more declared las": (_more_declared, ".las", "declares 5310 points of 34 bytes but the file holds 5210"),
    "more declared laz": (_more_declared, ".laz", "truncated or corrupt: the header declares 5310 points"),
    "absurd count laz": (_absurd_count, ".laz", r"declares 4,000,000,000 points: 96.00 GB as float64, .* available"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_files_are_refused_with_a_clear_error(tmp_path, kitten, case):
    spoil, suffix, message = BAD_FILES[case]
    good = _write(tmp_path / f"good{suffix}", kitten[0])
    bad = tmp_path / f"bad{suffix}"
    spoil(bad, good.read_bytes())
    with pytest.raises(RbfieldError, match=message):
        load_shape(bad)


def test_a_file_of_zero_points_is_refused(tmp_path):
    empty = _write(tmp_path / "empty.las", np.zeros((0, 3)))
    with pytest.raises(RbfieldError, match=r"holds no points \(its header declares 0\)"):
        read_las(empty)


def test_laz_without_a_backend_says_what_to_install(tmp_path, kitten, monkeypatch):
    las, laz = _write(tmp_path / "k.las", kitten[0]), _write(tmp_path / "k.laz", kitten[0])
    monkeypatch.setattr(laspy.LazBackend, "detect_available", staticmethod(lambda: ()))
    with pytest.raises(RbfieldError, match=r"no LAZ backend is installed: pip install 'rbfield\[las\]'"):
        read_las(laz)
    assert len(read_las(las)[0]) == len(kitten[0])  # uncompressed LAS needs no backend


def test_without_laspy_the_error_says_what_to_install(tmp_path, kitten, monkeypatch):
    path = _write(tmp_path / "k.las", kitten[0])
    monkeypatch.setitem(sys.modules, "laspy", None)  # import laspy now raises ImportError
    with pytest.raises(RbfieldError, match=r"needs the optional laspy package: pip install 'rbfield\[las\]'"):
        load_shape(path)


@pytest.mark.parametrize("suffix", [".las", ".laz"])
def test_a_chunked_read_equals_a_whole_read_in_bounded_memory(tmp_path, kitten, suffix):
    """Twenty side-by-side copies of the kitten (104,200 points), with noise, read 4,000 points at a time."""
    points, normals = kitten
    copies = 20
    points = np.concatenate([points + [8.0 * i, 0, 0] for i in range(copies)])
    classes = np.full(len(points), 2, dtype=np.uint8)
    classes[::11] = 7
    path = _write(tmp_path / f"many{suffix}", points, classes=classes)
    with pytest.warns(ShapeWarning):
        whole = read_las(path, chunk_points=len(points))[0]
    tracemalloc.start()
    try:
        with pytest.warns(ShapeWarning, match=f"dropped {(classes == 7).sum()} of {len(points)}"):
            chunked = read_las(path, chunk_points=4000)[0]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(chunked, whole)
    reference = laspy.read(str(path))
    kept = np.asarray(reference.classification) != 7
    np.testing.assert_array_equal(chunked, np.column_stack([reference.x, reference.y, reference.z])[kept])
    # Measured 1.11 (the result's 24 bytes per point, plus one chunk); a whole read in one chunk takes about 3.
    assert peak < 1.25 * 24 * len(points), peak / (24 * len(points))
