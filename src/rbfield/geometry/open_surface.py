"""Open surfaces back from a signed distance field: trim what the input does not support.

A signed distance field is closed by construction, so the zero set of a field
fitted to an open scan (a head cut off at the neck, a range scan, a terrain)
closes every hole with a cap. This module finds those caps after marching
cubes and removes them, as screened-Poisson users do with density trimming.

**Support.** The input's surface points: a point cloud's own points, or
:data:`SUPPORT_SAMPLES` area-uniform samples of a mesh. Each support point has
a *local spacing*: the mean distance to its :data:`SPACING_NEIGHBOURS` nearest
other support points (domain units).

**Rule.** A face of the extracted mesh is *unsupported* when the distance from
its centroid to the nearest support point p exceeds

    tau = SPACING_FACTOR * spacing(p) + VOXEL_FACTOR * voxel,

``voxel`` the marching-cubes cell size, 1 / (resolution - 1). The first term
covers the gaps between input points, the second the mesh's own
discretisation and the fit's small offsets from the input.

**Clean-up** (:func:`trim_unsupported`), in order:

1. *pinholes*: connected regions of unsupported faces with less area than a
   disc of radius FILL_RADIUS_FACTOR * tau are kept after all (sampling gaps
   on a genuine surface, not holes of the input);
2. *ragged rims*: a kept face left with at most one kept edge-neighbour (a
   spike or a sliver on the boundary) is removed, repeatedly;
3. *crumbs*: connected pieces with less than ``min_share`` of the largest
   piece's area are removed (:func:`rbfield.geometry.mesh_pieces.drop_small_pieces`);
4. *staircase*: each boundary vertex is moved half-way towards the midpoint of
   its two boundary neighbours, BOUNDARY_SMOOTHING times, which takes the
   marching-cubes zigzag out of the new rims.

**Back faces.** A field fitted to a single open sheet (a terrain, a range scan)
can wrap it in a thin closed shell: the sheet's top side, and a bottom side a
few sample spacings under it, both near the input and so both supported. For
a point cloud, a face whose normal points against the normal of its nearest
input point (cosine below BACK_FACE_COSINE) is the shell's back and is trimmed
with the unsupported faces (pinholes among them filled the same way). A mesh
input's face winding is not trusted for this: its back faces are kept.

The figures behind the constants are in docs/shapes.md ("Open surfaces").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from rbfield.errors import RbfieldError
from rbfield.geometry.mesh_pieces import drop_small_pieces, face_pieces
from rbfield.geometry.nearest import nearest
from rbfield.geometry.shape_metrics import sample_surface
from rbfield.geometry.shapes_io import Mesh, PointCloud
from rbfield.geometry.triangles import face_areas, face_normals
from rbfield.signals.sdf_defaults import SURFACE_MODES

#: Area-uniform samples of a mesh input that stand for its surface.
SUPPORT_SAMPLES = 200_000
#: Neighbours behind each support point's local spacing.
SPACING_NEIGHBOURS = 8
#: tau = SPACING_FACTOR * local spacing + VOXEL_FACTOR * voxel.
SPACING_FACTOR, VOXEL_FACTOR = 2.0, 1.0
#: Unsupported regions smaller than a disc of this many tau in radius are pinholes, kept.
FILL_RADIUS_FACTOR = 2.0
#: A face whose normal has a cosine below this with its nearest input point's normal is a back face.
BACK_FACE_COSINE = -0.5
#: Passes of boundary smoothing (each moves a rim vertex half-way to its neighbours' midpoint).
BOUNDARY_SMOOTHING = 4
#: A closed-mode fit warns when more than this share of its mesh's area is capped (unsupported
#: area in pieces the input supports elsewhere).
OPEN_WARNING_SHARE = 0.02


@dataclass(frozen=True)
class Support:
    """The input's surface points and their local spacing, in domain units.

    Attributes:
        points: (N, 3) points on the input surface.
        spacing: (N,) mean distance of each to its SPACING_NEIGHBOURS nearest others.
        tree: a k-d tree of ``points``.
        normals: (N, 3) their unit outward normals (a point cloud's), or None (a mesh's samples).
    """

    points: np.ndarray
    spacing: np.ndarray
    tree: cKDTree
    normals: np.ndarray | None = None

    @classmethod
    def of(cls, shape: Mesh | PointCloud, seed: int = 0) -> Support:
        """The support of a normalized mesh (its area-uniform samples) or point cloud (its points)."""
        if isinstance(shape, Mesh):
            points, _ = sample_surface(shape.vertices, shape.faces, SUPPORT_SAMPLES, seed)
            normals = None
        else:
            points, normals = np.asarray(shape.points, dtype=np.float64), np.asarray(shape.normals, dtype=np.float64)
        tree = cKDTree(points)
        neighbours = min(SPACING_NEIGHBOURS, len(points) - 1)
        distances, _ = tree.query(points, k=neighbours + 1)
        return cls(points, distances[:, 1:].mean(axis=1), tree, normals)

    def thresholds(
        self, queries: np.ndarray, voxel: float, factors: tuple[float, float] = (SPACING_FACTOR, VOXEL_FACTOR)
    ) -> tuple[np.ndarray, np.ndarray]:
        """Distance (Q,) from (Q, 3) points to the nearest support point, and each one's tau (Q,)
        with ``factors`` (spacing factor, voxel factor)."""
        distance, index = nearest(self.tree, queries)
        return distance, factors[0] * self.spacing[index] + factors[1] * voxel


def _fill_pinholes(vertices: np.ndarray, faces: np.ndarray, unsupported: np.ndarray, area: float) -> np.ndarray:
    """``unsupported`` without its connected regions of less than ``area`` (squared domain units)."""
    region = np.full(len(faces), -1)
    region[unsupported] = face_pieces(len(vertices), faces[unsupported])
    region_area = np.bincount(region[unsupported], face_areas(vertices, faces[unsupported]))
    small = np.zeros(len(faces), dtype=bool)
    small[unsupported] = region_area[region[unsupported]] < area
    return unsupported & ~small


def _edge_neighbour_counts(faces: np.ndarray) -> np.ndarray:
    """(F,) number of faces sharing an edge with each face (manifold meshes: at most 3)."""
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    _, edge, uses = np.unique(edges, axis=0, return_inverse=True, return_counts=True)
    return (uses[edge.reshape(-1)] - 1).reshape(3, -1).sum(axis=0)


def _drop_ragged(faces: np.ndarray) -> np.ndarray:
    """Remove, until none is left, faces with at most one edge-neighbour (spikes and slivers)."""
    while len(faces):
        ragged = _edge_neighbour_counts(faces) <= 1
        if not ragged.any():
            break
        faces = faces[~ragged]
    return faces


def boundary_edges(faces: np.ndarray) -> np.ndarray:
    """(B, 2) vertex pairs of the edges used by exactly one face."""
    if len(faces) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    unique, uses = np.unique(edges, axis=0, return_counts=True)
    return unique[uses == 1]


def _smooth_boundary(vertices: np.ndarray, faces: np.ndarray, passes: int) -> np.ndarray:
    """Copy of (V, 3) ``vertices`` whose boundary vertices with exactly two boundary
    neighbours are moved, ``passes`` times, half-way to those neighbours' midpoint."""
    vertices = vertices.copy()
    edges = boundary_edges(faces)
    if len(edges) == 0:
        return vertices
    ends = np.concatenate([edges, edges[:, ::-1]])
    degree = np.bincount(ends[:, 0], minlength=len(vertices))
    ends = ends[degree[ends[:, 0]] == 2]
    for _ in range(passes):
        midpoint = np.zeros_like(vertices)
        np.add.at(midpoint, ends[:, 0], vertices[ends[:, 1]] / 2)
        moving = np.unique(ends[:, 0])
        vertices[moving] = 0.5 * vertices[moving] + 0.5 * midpoint[moving]
    return vertices


@dataclass(frozen=True)
class Trimmed:
    """An open mesh made from a closed one by :func:`trim_unsupported`.

    Attributes:
        vertices: (V', 3) domain units; faces: (F', 3) int64 indices into them.
        shares: :func:`unsupported_shares` of the mesh before trimming.
    """

    vertices: np.ndarray
    faces: np.ndarray
    shares: dict


def _unsupported_after_fill(
    vertices: np.ndarray, faces: np.ndarray, support: Support, voxel: float, factors: tuple[float, float]
) -> tuple[np.ndarray, float]:
    """(F,) bool: the rule's unsupported faces with the pinholes filled, and the median tau."""
    distance, tau = support.thresholds(vertices[faces].mean(axis=1), voxel, factors)
    threshold = float(np.median(tau))
    pinhole = np.pi * (FILL_RADIUS_FACTOR * threshold) ** 2
    return _fill_pinholes(vertices, faces, distance > tau, pinhole), threshold


def unsupported_shares(
    vertices: np.ndarray,
    faces: np.ndarray,
    support: Support,
    voxel: float,
    factors: tuple[float, float] = (SPACING_FACTOR, VOXEL_FACTOR),
) -> dict:
    """How much of a mesh's area the rule (pinholes filled) calls unsupported.

    Returns:
        ``unsupported_area_share`` (all of it), ``capped_area_share`` (the part in connected
        pieces that the input also supports elsewhere: caps over holes, not floaters), both
        shares of the mesh's area, and ``trim_threshold``, the median tau (domain units;
        NaN for a mesh without faces).
    """
    if len(faces) == 0:
        return {"unsupported_area_share": 0.0, "capped_area_share": 0.0, "trim_threshold": float("nan")}
    unsupported, threshold = _unsupported_after_fill(vertices, faces, support, voxel, factors)
    areas = face_areas(vertices, faces)
    piece = face_pieces(len(vertices), faces)
    supported_pieces = np.bincount(piece, ~unsupported, minlength=piece.max() + 1) > 0
    total = max(areas.sum(), 1e-300)
    return {
        "unsupported_area_share": float(areas[unsupported].sum() / total),
        "capped_area_share": float(areas[unsupported & supported_pieces[piece]].sum() / total),
        "trim_threshold": threshold,
    }


def back_faces(vertices: np.ndarray, faces: np.ndarray, support: Support) -> np.ndarray:
    """(F,) bool: faces whose normal has a cosine below BACK_FACE_COSINE with the normal of the input
    point nearest their centroid (none when the support has no normals)."""
    if support.normals is None or len(faces) == 0:
        return np.zeros(len(faces), dtype=bool)
    _, index = nearest(support.tree, vertices[faces].mean(axis=1))
    return (face_normals(vertices, faces) * support.normals[index]).sum(axis=1) < BACK_FACE_COSINE


def trim_unsupported(
    vertices: np.ndarray,
    faces: np.ndarray,
    support: Support,
    voxel: float,
    min_share: float,
    factors: tuple[float, float] = (SPACING_FACTOR, VOXEL_FACTOR),
) -> Trimmed:
    """Remove the faces the input does not support and the back faces, and clean the new rims
    (module docstring).

    Args:
        vertices: (V, 3) the extracted mesh, domain units; faces: (F, 3) int indices.
        support: the input's surface points.
        voxel: the marching-cubes cell size, domain units.
        min_share: pieces with less than this share of the largest piece's area are dropped.
        factors: the rule's (spacing factor, voxel factor).
    """
    shares = unsupported_shares(vertices, faces, support, voxel, factors)
    if len(faces) == 0:
        return Trimmed(vertices, faces, shares)
    unsupported, threshold = _unsupported_after_fill(vertices, faces, support, voxel, factors)
    back = _fill_pinholes(
        vertices, faces, back_faces(vertices, faces, support), np.pi * (FILL_RADIUS_FACTOR * threshold) ** 2
    )
    kept_faces = _drop_ragged(faces[~(unsupported | back)])
    kept, kept_faces = drop_small_pieces(vertices, kept_faces, min_share)
    smoothed = _smooth_boundary(vertices[kept], kept_faces, BOUNDARY_SMOOTHING)
    return Trimmed(smoothed, kept_faces, shares)


def boundary_summary(vertices: np.ndarray, faces: np.ndarray) -> dict:
    """``boundary_length`` (total length of the edges used by one face, in the vertices' units)
    and ``boundary_loops`` (connected chains of such edges) of a mesh."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    edges = boundary_edges(faces)
    if len(edges) == 0:
        return {"boundary_length": 0.0, "boundary_loops": 0}
    length = float(np.linalg.norm(vertices[edges[:, 0]] - vertices[edges[:, 1]], axis=1).sum())
    ends = np.unique(edges)
    local = np.searchsorted(ends, edges)
    graph = coo_matrix((np.ones(len(local)), (local[:, 0], local[:, 1])), shape=(len(ends), len(ends)))
    loops, _ = connected_components(graph, directed=False)
    return {"boundary_length": length, "boundary_loops": int(loops)}


def check_surface_mode(mode: str) -> str:
    """``mode`` if it is one of SURFACE_MODES; otherwise a one-line input error."""
    if mode not in SURFACE_MODES:
        raise RbfieldError(f"surface mode {mode!r} is not one of {', '.join(SURFACE_MODES)}")
    return mode


def finish_surface(
    mode: str, vertices: np.ndarray, faces: np.ndarray, shape: Mesh | PointCloud, resolution: int, min_share: float
) -> tuple[np.ndarray, np.ndarray, dict]:
    """The mesh of a ``mode`` surface ("closed": as extracted; "open": trimmed to the input) and its report.

    Args:
        mode: one of SURFACE_MODES.
        vertices, faces: (V, 3) domain units and (F, 3) int, the extracted closed mesh.
        shape: the normalized input whose points support the surface.
        resolution: the marching-cubes resolution (the voxel is 1 / (resolution - 1)).
        min_share: the smallest piece kept, as a share of the largest piece's area.

    Returns:
        vertices, faces, and ``surface`` (the mode), the :func:`unsupported_shares` of the closed
        mesh, and ``boundary_length`` (domain units) and ``boundary_loops`` of the mesh returned.
    """
    check_surface_mode(mode)
    support, voxel = Support.of(shape), 1.0 / (resolution - 1)
    if mode == "open":
        trimmed = trim_unsupported(vertices, faces, support, voxel, min_share)
        vertices, faces, shares = trimmed.vertices, trimmed.faces, trimmed.shares
    else:
        shares = unsupported_shares(vertices, faces, support, voxel)
    return vertices, faces, {"surface": mode, **shares, **boundary_summary(vertices, faces)}


def open_surface_hint(report: dict) -> str | None:
    """A one-line suggestion of ``--surface open`` for a closed-mode report whose mesh has caps
    over more than OPEN_WARNING_SHARE of its area (``capped_area_share``), else None."""
    share = report["capped_area_share"]
    if report["surface"] != "closed" or share <= OPEN_WARNING_SHARE:
        return None
    return (
        f"{share:.1%} of the mesh's area lies farther from the input than its point spacing allows, next to "
        "parts that it supports: the input looks like an open surface whose holes were capped; "
        "--surface open trims the caps"
    )
