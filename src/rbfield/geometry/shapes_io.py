"""Reading meshes and oriented point clouds, normalizing them, writing meshes.

Meshes: OBJ, PLY (with faces), OFF, STL, GLB/GLTF (read with trimesh; a
scene's meshes are merged). Point clouds: ``.xyz`` / ``.pwn`` text files with
``x y z [nx ny nz]`` per line, a PLY without faces (normals from its
``nx ny nz`` vertex properties), a PCD file (:mod:`rbfield.geometry.pcd_io`), or a
LAS/LAZ lidar file (:mod:`rbfield.geometry.las_io`; needs the ``las`` extra).
Coordinates are in the file's own units. A point cloud's points are cleaned and
its normals estimated if need be by :func:`rbfield.geometry.raw_points.prepare_points`.

:class:`Normalization` maps the input into the field's domain [0, 1]^3:
centre of the bounding box to 0.5, longest side to :data:`FILL` (so a margin
of 0.05 remains on each side), and back.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rbfield.errors import RbfieldError, ShapeWarning
from rbfield.geometry.edge_defects import edge_defects
from rbfield.geometry.las_io import read_las
from rbfield.geometry.pcd_io import read_pcd
from rbfield.geometry.raw_points import MIN_POINTS, Preparation, prepare_points
from rbfield.geometry.triangles import face_areas

MESH_EXTENSIONS = (".obj", ".ply", ".off", ".stl", ".glb", ".gltf")
POINT_EXTENSIONS = (".xyz", ".pwn", ".ply", ".pcd", ".las", ".laz")
#: The mesh files rbfield writes.
MESH_OUTPUT_EXTENSIONS = (".ply", ".obj", ".glb")
#: Fraction of the unit cube taken by the longest side of a normalized shape.
FILL = 0.9


@dataclass
class Mesh:
    """A triangle mesh: vertices (V, 3) float64, faces (F, 3) int64."""

    vertices: np.ndarray
    faces: np.ndarray


@dataclass
class PointCloud:
    """Points (P, 3) float64 and unit normals (P, 3) float64. ``normals_estimated``: the normals were
    estimated, not read; ``preparation`` says how a file's points were cleaned and where the normals came
    from (None when built in code); ``read_points``: (P, 3) the same points as read, before denoising moved
    them (None when they were not moved). A fit takes ``points``; scores against the input take
    :attr:`measured`."""

    points: np.ndarray
    normals: np.ndarray
    normals_estimated: bool = False
    preparation: Preparation | None = None
    read_points: np.ndarray | None = None

    @property
    def measured(self) -> np.ndarray:
        """(P, 3) the points as measured: ``read_points`` if denoising moved them, else ``points``."""
        return self.points if self.read_points is None else self.read_points


@dataclass(frozen=True)
class Normalization:
    """Similarity ``y = (x - centre) * scale + 0.5`` into [0, 1]^3.

    Attributes:
        centre: (3,) bounding-box centre in input units.
        scale: domain units per input unit.
    """

    centre: tuple[float, float, float]
    scale: float

    @classmethod
    def fit(cls, points: np.ndarray) -> Normalization:
        low, high = points.min(0), points.max(0)
        extent = float((high - low).max())
        if not extent > 0:
            raise RbfieldError("the shape has zero size (all points coincide); nothing to fit")
        return cls(tuple(float(c) for c in (low + high) / 2), FILL / extent)

    def forward(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) input units -> (N, 3) domain units."""
        return (points - np.asarray(self.centre)) * self.scale + 0.5

    def inverse(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) domain units -> (N, 3) input units."""
        return (points - 0.5) / self.scale + np.asarray(self.centre)

    def to_dict(self) -> dict:
        return {"centre": list(self.centre), "scale": self.scale}

    @classmethod
    def from_dict(cls, data: dict) -> Normalization:
        return cls(tuple(float(c) for c in data["centre"]), float(data["scale"]))


def _check_file(path: Path, extensions: tuple[str, ...]) -> None:
    if not path.exists():
        raise RbfieldError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise RbfieldError(f"{path}: is a folder; pass a mesh or point-cloud file")
    if path.suffix.lower() not in extensions:
        raise RbfieldError(f"{path}: unknown extension {path.suffix or '(none)'!r}; use one of {', '.join(extensions)}")
    if path.stat().st_size == 0:
        raise RbfieldError(f"{path}: the file is empty (0 bytes)")


def _finite(array: np.ndarray, path: Path, what: str) -> None:
    if not np.isfinite(array).all():
        raise RbfieldError(f"{path}: the {what} contain NaN or infinite coordinates; clean the file first")


def load_shape(
    path: str | os.PathLike, normals: str = "auto", outliers: str = "remove", denoise: str = "auto"
) -> Mesh | PointCloud:
    """Read a mesh or a point cloud, choosing by extension and content.

    Args:
        path: the file; normals: for a point cloud, where its normals come from
            (:data:`rbfield.geometry.raw_points.NORMAL_SOURCES`: auto, given, estimate);
            outliers: for a point cloud, "remove" (the default) or "keep" its outliers;
            denoise: for a point cloud, "auto" (denoise when its measured noise calls for it) or "off".

    Raises:
        RbfieldError: missing/empty/unreadable file, unknown extension, no
            faces and no points, NaN coordinates, too few points, points on a line,
            normals "given" but absent.
    Warns:
        ShapeWarning: open, non-manifold or inconsistently wound mesh; point
            cloud without normals, with duplicates, outliers or noise.
    """
    path = Path(path)
    _check_file(path, tuple(sorted(set(MESH_EXTENSIONS + POINT_EXTENSIONS))))
    suffix = path.suffix.lower()
    if suffix in (".xyz", ".pwn"):
        return _point_cloud(path, *_read_xyz(path), normals, outliers, denoise)
    if suffix == ".pcd":
        return _point_cloud(path, *read_pcd(path), normals, outliers, denoise)
    if suffix in (".las", ".laz"):
        return _point_cloud(path, *read_las(path), normals, outliers, denoise)
    import trimesh

    try:
        loaded = trimesh.load(str(path), process=False)
    except Exception as error:  # trimesh raises many types for malformed files
        problem = off_face_problem(path) if suffix == ".off" else None
        if problem:
            raise RbfieldError(f"{path}: {problem}; fix or re-export the mesh") from None
        raise RbfieldError(f"{path}: not a readable {suffix[1:].upper()} file ({type(error).__name__})") from None
    if isinstance(loaded, trimesh.PointCloud):
        vertices = np.asarray(loaded.vertices, dtype=np.float64).reshape(-1, 3)
        if suffix == ".ply" and len(vertices) > 0:
            return _point_cloud(path, vertices, _ply_normals(path, len(vertices)), normals, outliers, denoise)
        loaded = trimesh.Trimesh()
    if isinstance(loaded, trimesh.Scene):
        loaded = loaded.to_mesh() if loaded.geometry else trimesh.Trimesh()
    if suffix == ".stl":  # STL stores three vertices per face; weld them
        loaded.merge_vertices()
    faces = np.asarray(getattr(loaded, "faces", np.zeros((0, 3))), dtype=np.int64).reshape(-1, 3)
    vertices = np.asarray(getattr(loaded, "vertices", np.zeros((0, 3))), dtype=np.float64).reshape(-1, 3)
    return check_mesh(Mesh(vertices, faces), path)


#: Faces with less than this share of the squared extent count as zero-area (float64 round-off is ~1e-16).
AREA_TOLERANCE = 1e-12
#: The shape is mapped to [0, 1]^3 and fitted in float32 (7 significant digits): a bounding box this many
#: times wider than the median edge leaves the bulk of the mesh unresolved.
MAX_SPREAD = 1e6


def _check_spread(mesh: Mesh, path: Path | str) -> None:
    """Refuse a mesh whose bounding box is far wider than its edges: a stray vertex, not a shape."""
    edges = mesh.vertices[mesh.faces[:, [1, 2, 0]]] - mesh.vertices[mesh.faces]
    lengths = np.linalg.norm(edges.reshape(-1, 3), axis=1)
    median_edge = float(np.median(lengths[lengths > 0])) if (lengths > 0).any() else 0.0
    extent = float(np.ptp(mesh.vertices, axis=0).max())
    if median_edge > 0 and extent > MAX_SPREAD * median_edge:
        centre = np.median(mesh.vertices, axis=0)
        farthest = int(np.argmax(np.abs(mesh.vertices - centre).max(axis=1)))
        raise RbfieldError(
            f"{path}: the mesh spans {extent:.3g} units but its median edge is {median_edge:.3g}; vertex "
            f"{farthest} at {mesh.vertices[farthest].tolist()} lies far from the rest: remove stray vertices first"
        )


def check_mesh(mesh: Mesh, path: Path | str = "mesh") -> Mesh:
    """Refuse meshes that cannot be fitted; warn about open, non-manifold or
    inconsistently wound ones (see :mod:`rbfield.geometry.edge_defects`)."""
    if len(mesh.vertices) == 0 or len(mesh.faces) == 0:
        raise RbfieldError(f"{path}: the mesh is empty ({len(mesh.vertices)} vertices, {len(mesh.faces)} faces)")
    _finite(mesh.vertices, Path(path), "vertices")
    if not np.isfinite(np.ptp(mesh.vertices, axis=0)).all():
        raise RbfieldError(f"{path}: the vertices span more than a 64-bit float can hold; fix the coordinates")
    if mesh.faces.min() < 0 or mesh.faces.max() >= len(mesh.vertices):
        raise RbfieldError(f"{path}: faces refer to vertices that do not exist")
    _check_spread(mesh, path)
    extent = float(np.ptp(mesh.vertices, axis=0).max())
    areas = face_areas(mesh.vertices, mesh.faces)
    # Relative to the shape's size, so round-off areas of collinear vertices do not count.
    if not (areas > AREA_TOLERANCE * extent**2).any():
        raise RbfieldError(f"{path}: every face has zero area (the vertices lie on a line or a point); nothing to fit")
    defects = edge_defects(mesh.faces)
    if defects.open:
        warnings.warn(
            f"{path}: the mesh is not watertight (open edges: {defects.open}); "
            "signs come from generalised winding numbers",
            ShapeWarning,
            stacklevel=3,
        )
    if defects.non_manifold:
        warnings.warn(
            f"{path}: the mesh is non-manifold (edges of three or more faces: {defects.non_manifold})",
            ShapeWarning,
            stacklevel=3,
        )
    if defects.misoriented:
        warnings.warn(
            f"{path}: some faces are wound against their neighbours (misoriented edges: "
            f"{defects.misoriented}); signs and normals near them may be wrong, so re-orient the mesh "
            "first (e.g. MeshLab: Re-Orient all faces coherently)",
            ShapeWarning,
            stacklevel=3,
        )
    return mesh


def off_face_problem(path: Path) -> str | None:
    """The first face of an OFF file that names a vertex the file does not have, described
    ("face 7 refers to vertex 12, but the file has 10 vertices (0..9)"), or None."""
    try:
        lines = [line.split("#", 1)[0].split() for line in path.read_text(errors="replace").splitlines()]
    except OSError:
        return None
    lines = [words for words in lines if words]
    if not lines or not lines[0][0].upper().endswith("OFF"):
        return None
    counts = lines[0][1:] or (lines[1] if len(lines) > 1 else [])
    start = 1 if lines[0][1:] else 2
    try:
        n_vertices, n_faces = int(counts[0]), int(counts[1])
    except (IndexError, ValueError):
        return None
    faces = lines[start + n_vertices : start + n_vertices + n_faces]
    if len(lines) - start < n_vertices + n_faces:
        return (
            f"the header declares {n_vertices} vertices and {n_faces} faces but the file holds only "
            f"{len(lines) - start} lines of them: it is truncated or its header is wrong"
        )
    for number, words in enumerate(faces):
        try:
            indices = [int(word) for word in words[1 : 1 + int(words[0])]]
        except ValueError:
            return f"face {number} is not a list of vertex indices: {' '.join(words)!r}"
        bad = [index for index in indices if not 0 <= index < n_vertices]
        if bad:
            return (
                f"face {number} refers to vertex {bad[0]}, but the file has {n_vertices} vertices (0..{n_vertices - 1})"
            )
    return None


def _read_xyz(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """The (N, 3) points and (N, 3) normals or None of an ``x y z [nx ny nz]`` text file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data", refused below
            data = np.loadtxt(path, dtype=np.float64, ndmin=2, comments="#")
    except ValueError as error:
        raise RbfieldError(f"{path}: not an x y z [nx ny nz] text file ({str(error).splitlines()[0]})") from None
    if data.size == 0:
        raise RbfieldError(f"{path}: the file holds no points")
    if data.shape[1] not in (3, 6):
        raise RbfieldError(f"{path}: expected 3 (x y z) or 6 (x y z nx ny nz) numbers per line, got {data.shape[1]}")
    return data[:, :3], (data[:, 3:6] if data.shape[1] == 6 else None)


def _ply_normals(path: Path, n_points: int) -> np.ndarray | None:
    """The (N, 3) ``nx ny nz`` vertex properties of a PLY point cloud, or None."""
    import point_cloud_utils as pcu

    try:
        _, normals = pcu.load_mesh_vn(str(path))
    except Exception:  # point-cloud-utils raises plain exceptions for PLYs it cannot read
        return None
    return None if normals is None or len(normals) != n_points else np.asarray(normals, dtype=np.float64)


def _point_cloud(
    path: Path,
    points: np.ndarray,
    normals: np.ndarray | None,
    source: str,
    outliers: str = "remove",
    denoise: str = "auto",
) -> PointCloud:
    """Check a file's points and normals and prepare them (:func:`prepare_points`)."""
    if len(points) == 0:
        raise RbfieldError(f"{path}: the file holds no points")
    if len(points) < MIN_POINTS:
        noun = "point" if len(points) == 1 else "points"
        raise RbfieldError(f"{path}: only {len(points)} {noun}; a point cloud needs at least {MIN_POINTS}")
    _finite(points, path, "points")
    if normals is not None:
        _finite(normals, path, "normals")
        length = np.linalg.norm(normals, axis=1)
        if (length < 1e-12).any():
            normals = None
            if source == "given":
                raise RbfieldError(f"{path}: some normals have zero length; use --normals estimate to estimate them")
            if source == "auto":
                warnings.warn(
                    f"{path}: some normals have zero length; estimating all normals", ShapeWarning, stacklevel=3
                )
        else:
            normals = normals / length[:, None]
    prepared = prepare_points(points, normals, str(path), source, outliers, denoise)
    return PointCloud(
        prepared.points,
        prepared.normals,
        prepared.preparation.normals == "estimated",
        prepared.preparation,
        prepared.read_points,
    )


def check_mesh_output(out: str | Path) -> None:
    """Refuse, before any work, a mesh output rbfield cannot write (by extension)."""
    if Path(out).suffix.lower() not in MESH_OUTPUT_EXTENSIONS:
        raise RbfieldError(f"{out}: meshes are written as .ply, .obj or .glb, not {Path(out).suffix or '(none)'!r}")


def save_mesh(path: str | os.PathLike, vertices: np.ndarray, faces: np.ndarray) -> None:
    """Write a triangle mesh as PLY, OBJ or GLB (by extension), atomically."""
    import trimesh

    from rbfield.io import atomic_write_bytes

    path = Path(path)
    kind = path.suffix.lower().lstrip(".")
    if path.suffix.lower() not in MESH_OUTPUT_EXTENSIONS:
        raise RbfieldError(f"{path}: meshes are written as .ply, .obj or .glb, not {path.suffix or '(none)'!r}")
    data = trimesh.Trimesh(vertices, faces, process=False).export(file_type=kind)
    atomic_write_bytes(path, data if isinstance(data, bytes) else data.encode())
