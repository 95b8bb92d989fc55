"""Screened Poisson surface reconstruction through Open3D: the classical baseline for meshes from points.

Screened Poisson (Kazhdan & Hoppe 2013) solves for an indicator function whose
gradient matches the oriented points, screened towards zero at the points, on
an adaptive octree, and meshes its level set at the points. Open3D runs
Kazhdan's own implementation; :func:`screened_poisson` chooses its inputs:

* **Normals.** The points' own, or, when there are none or ``estimate_normals``
  asks, Open3D's: a plane fit to at most :data:`NORMAL_NEIGHBOURS` neighbours
  within :data:`NORMAL_RADIUS` median spacings (a hybrid k-d tree search),
  oriented consistently along a Riemannian graph of
  :data:`ORIENT_NEIGHBOURS` neighbours (Hoppe et al. 1992's propagation), then
  all flipped if most of them point towards the centroid.
* **Depth**, when not given: the finest octree cell should be about the median
  spacing of the points, so ``depth = ceil(log2(SCALE * extent / spacing))``,
  ``extent`` the bounding box's longest side, clamped to :data:`DEPTH_RANGE`.
  Open3D adapts the octree to the points, so the depth is an upper bound.
* **Trimming** (optional, the usual practice on open scans): vertices whose
  density (Open3D's count of supporting points) is below the
  ``trim_quantile`` quantile are removed with their faces, so that surface the
  solver invents across holes and beyond the scan goes.

Other settings are Open3D's defaults (in Open3D 0.20: 1.5 samples per node,
screening weight 2, full depth 5). Coordinates are in the input's units; the
result is in the same units.

Open3D is an optional extra: ``pip install 'rbfield[poisson]'`` brings
``open3d-cpu``, whose wheel imports only after ``apt-get install
libusb-1.0-0`` on Debian and Ubuntu.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from rbfield.errors import RbfieldError
from rbfield.ops import cpu_workers, tree_query

#: Depths chosen from the data are clamped to this range (depth 10 meshes at most 1024^3 cells).
DEPTH_RANGE = (6, 10)
#: Ratio of the reconstruction cube's side to the bounding box's longest side (Open3D's default).
SCALE = 1.1
#: Neighbours, at most, of a normal's plane fit.
NORMAL_NEIGHBOURS = 30
#: Radius of a normal's neighbourhood, in median point spacings.
NORMAL_RADIUS = 4.0
#: Neighbours per point in the graph along which orientations propagate.
ORIENT_NEIGHBOURS = 15
#: Points sampled to estimate the median spacing of a larger cloud.
SPACING_SAMPLES = 100_000
#: Why screened Poisson is unavailable, for an error message.
MISSING_OPEN3D = (
    "screened Poisson needs Open3D: pip install 'rbfield[poisson]' (open3d-cpu); "
    "on Debian/Ubuntu its wheel imports only after apt-get install libusb-1.0-0"
)


@dataclass(frozen=True)
class PoissonMesh:
    """A screened Poisson reconstruction.

    Attributes:
        vertices: (V, 3) float64, in the input's units.
        faces: (F, 3) int64.
        seconds: wall time of normal estimation (if any), reconstruction and trimming.
        depth: the octree depth used.
        estimated_normals: whether Open3D estimated the normals.
        trim_quantile: the density quantile trimmed away, or None.
    """

    vertices: np.ndarray
    faces: np.ndarray
    seconds: float
    depth: int
    estimated_normals: bool
    trim_quantile: float | None


def check_trim_quantile(trim_quantile: float | None) -> None:
    """Raise RbfieldError unless ``trim_quantile`` is None or in [0, 1)."""
    if trim_quantile is not None and not 0 <= trim_quantile < 1:
        raise RbfieldError(f"the density quantile to trim must be in [0, 1), got {trim_quantile}")


def import_open3d():
    """The open3d module, or an RbfieldError naming the extra (and the libusb note) when it does not import."""
    try:
        import open3d
    except (ImportError, OSError) as error:
        raise RbfieldError(f"{MISSING_OPEN3D} ({str(error).splitlines()[0] if str(error) else 'not found'})") from None
    return open3d


def median_spacing(points: np.ndarray, seed: int = 0) -> float:
    """Median distance from a point to its nearest other point, over at most
    :data:`SPACING_SAMPLES` of the (P, 3) points (P >= 2), in their units."""
    rng = np.random.default_rng(seed)
    probes = points if len(points) <= SPACING_SAMPLES else points[rng.choice(len(points), SPACING_SAMPLES, False)]
    tree = cKDTree(points)
    distances = np.asarray(tree_query(tree.query, probes, k=2)[0])[:, 1]
    positive = distances[distances > 0]
    return float(np.median(positive)) if len(positive) else 0.0


def choose_depth(points: np.ndarray, spacing: float) -> int:
    """Octree depth whose finest cell is about ``spacing``: ceil(log2(SCALE * extent / spacing)) in DEPTH_RANGE."""
    extent = float(np.ptp(points, axis=0).max())
    if not (spacing > 0 and extent > 0):
        return DEPTH_RANGE[0]
    return int(min(max(math.ceil(math.log2(SCALE * extent / spacing)), DEPTH_RANGE[0]), DEPTH_RANGE[1]))


def _estimate_normals(o3d, cloud, points: np.ndarray, spacing: float) -> None:
    """Open3D's normals on ``cloud``, oriented consistently, then outward on the whole."""
    search = o3d.geometry.KDTreeSearchParamHybrid(radius=NORMAL_RADIUS * spacing, max_nn=NORMAL_NEIGHBOURS)
    cloud.estimate_normals(search)
    cloud.orient_normals_consistent_tangent_plane(ORIENT_NEIGHBOURS)
    normals = np.asarray(cloud.normals)
    if ((points - points.mean(0)) * normals).sum() < 0:
        cloud.normals = o3d.utility.Vector3dVector(-normals)


def screened_poisson(
    points: np.ndarray,
    normals: np.ndarray | None = None,
    depth: int | None = None,
    estimate_normals: bool = False,
    trim_quantile: float | None = None,
) -> PoissonMesh:
    """Screened Poisson reconstruction of a point cloud.

    Args:
        points: (P, 3) points, P >= 16, in any units.
        normals: (P, 3) outward normals (need not be unit length), or None to estimate them.
        depth: octree depth, or None to choose it from the points (:func:`choose_depth`).
        estimate_normals: estimate normals even when ``normals`` are given.
        trim_quantile: remove vertices below this quantile of density (e.g. 0.01), or None to keep all.

    Raises:
        RbfieldError: Open3D missing, too few points, a bad quantile, or an empty reconstruction.
    """
    o3d = import_open3d()
    points = np.ascontiguousarray(points, dtype=np.float64)
    if len(points) < 16:
        raise RbfieldError(f"screened Poisson needs at least 16 points, got {len(points)}")
    check_trim_quantile(trim_quantile)
    started = time.perf_counter()
    spacing = median_spacing(points)
    depth = choose_depth(points, spacing) if depth is None else depth
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    estimated = normals is None or estimate_normals
    if estimated:
        _estimate_normals(o3d, cloud, points, spacing)
    else:
        cloud.normals = o3d.utility.Vector3dVector(np.ascontiguousarray(normals, dtype=np.float64))
    mesh, densities = o3d.geometry.TriangleMesh.create_from_point_cloud_poisson(
        cloud, depth=depth, scale=SCALE, n_threads=cpu_workers()
    )
    if trim_quantile is not None and len(mesh.vertices):
        densities = np.asarray(densities)
        mesh.remove_vertices_by_mask(densities < np.quantile(densities, trim_quantile))
    seconds = time.perf_counter() - started
    faces = np.asarray(mesh.triangles, dtype=np.int64).reshape(-1, 3)
    if len(faces) == 0:
        raise RbfieldError("screened Poisson returned an empty mesh; check the points and their normals")
    return PoissonMesh(
        np.asarray(mesh.vertices, dtype=np.float64).reshape(-1, 3), faces, seconds, depth, estimated, trim_quantile
    )
