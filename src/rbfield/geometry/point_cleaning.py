"""Noise and outliers of a raw point cloud.

* :func:`outlier_mask` -- statistical outlier removal (after Rusu et al. 2008):
  a point is an outlier when its mean distance to its k nearest neighbours is
  far above the cloud's median (robustly: by more than OUTLIER_MADS scaled
  median absolute deviations), and its neighbourhood does not look like a
  piece of a sparsely sampled surface: either the point is sparser than its own
  neighbours (by LOCAL_RATIO) or its neighbourhood is not flat (surface
  variation above OUTLIER_VARIATION). The second condition keeps the sparse
  parts of an unevenly sampled scan.
* :func:`noise_level` -- the median RMS distance of points from their local
  planes, relative to the bounding box's diagonal: an upper bound of the noise's
  standard deviation, as curvature adds to it.
* :func:`project_to_planes` -- moves each point onto its local plane, which
  averages noise over the neighbourhood but shrinks curved parts.
* :func:`project_to_quadrics` -- moves each point onto a quadric height field
  fitted to the neighbours on its own side of the surface (an osculating jet,
  Cazals and Pouget 2005), which averages noise without the plane's shrinkage
  (it still rounds sharp edges).
* :func:`project_to_quadrics_adaptive` -- the same at a few neighbourhood
  scales, keeping per point the widest scale whose fit is still about as good
  as the narrowest one's: wide where the surface is smooth (more noise
  averaged), narrow on fine detail (less of it rounded away).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.spatial import cKDTree

from rbfield.geometry.point_normals import CHUNK, PLANE_NEIGHBOURS, LocalPlanes, neighbour_chunks

#: Robust z-score (in scaled MADs of the mean k-NN distance) above which a point is sparse.
OUTLIER_MADS = 3.0
#: A sparse point is an outlier if its mean k-NN distance exceeds its neighbours' median by this factor...
LOCAL_RATIO = 1.5
#: ...or if its neighbourhood's surface variation, lambda_min / (lambda_0 + lambda_1 + lambda_2), exceeds this
#: (0 on a plane, 1/3 for an isotropic blob).
OUTLIER_VARIATION = 0.1
#: Scales a median absolute deviation to a standard deviation for normal data.
MAD_SCALE = 1.4826
#: Ridge added to the quadric fits' normal equations (their coordinates are scaled to unit RMS).
QUADRIC_RIDGE = 1e-9
#: Fewest same-side neighbours a quadric fit needs (it has 6 coefficients).
MIN_QUADRIC_NEIGHBOURS = 10
#: ``chunk`` in :func:`project_to_quadrics` counts points at this many neighbours; wider fits take
#: proportionally fewer points a batch, so a batch's memory does not grow with the neighbourhood.
CHUNK_NEIGHBOURS = 32


class QuadricScale(NamedTuple):
    """The neighbourhood of one quadric fit.

    Attributes:
        neighbours: k nearest points fitted (the point itself included).
        width: Gaussian weight width as a share of the distance to the k-th neighbour: a neighbour at
            distance d weighs exp(-(d / (width x d_k))^2). None weighs all k equally.
    """

    neighbours: int
    width: float | None = None


class QuadricProjection(NamedTuple):
    """Points moved onto their local quadrics (N points).

    Attributes:
        points: (N, 3) moved points (input units).
        normals: (N, 3) the quadrics' unit normals there.
        residuals: (N,) weighted mean squared height of the neighbours off the quadric (input units
            squared); inf where a point had too few same-side neighbours and stayed as it was.
    """

    points: np.ndarray
    normals: np.ndarray
    residuals: np.ndarray


def outlier_mask(points: np.ndarray, k: int = PLANE_NEIGHBOURS, tree: cKDTree | None = None) -> np.ndarray:
    """(N,) bool, True at the outliers of (N, 3) points (see the module's docstring).

    Args:
        points: (N, 3) in any units; k: neighbours per point; tree: a cKDTree of ``points``, if built.
    """
    points = np.asarray(points, dtype=np.float64)
    tree = tree or cKDTree(points)
    n = len(points)
    mean_distance, variation = np.empty(n), np.empty(n)
    neighbours = np.empty((n, min(k, n - 1)), dtype=np.int64)
    for start, distances, indices in neighbour_chunks(tree, points, k + 1):
        stop = start + len(indices)
        mean_distance[start:stop] = distances[:, 1:].mean(axis=1)
        neighbours[start:stop] = indices[:, 1:]
        centred = points[indices] - points[indices].mean(axis=1, keepdims=True)
        eigenvalues = np.linalg.eigvalsh(np.einsum("cki,ckj->cij", centred, centred))
        variation[start:stop] = eigenvalues[:, 0] / np.maximum(eigenvalues.sum(axis=1), 1e-300)
    median = np.median(mean_distance)
    spread = MAD_SCALE * np.median(np.abs(mean_distance - median))
    sparse = mean_distance > median + OUTLIER_MADS * spread
    local = np.median(mean_distance[neighbours], axis=1)
    return sparse & ((mean_distance > LOCAL_RATIO * local) | (variation > OUTLIER_VARIATION))


def noise_level(planes: LocalPlanes, points: np.ndarray) -> float:
    """Median RMS distance of the points' neighbours from their local planes, as a share of the
    bounding box's diagonal (dimensionless)."""
    diagonal = float(np.linalg.norm(np.ptp(points, axis=0)))
    return float(np.median(planes.residuals)) / diagonal if diagonal > 0 else 0.0


def project_to_planes(points: np.ndarray, planes: LocalPlanes) -> np.ndarray:
    """(N, 3) points moved along their normals onto their local planes (through the neighbourhood's centroid)."""
    height = ((points - planes.centroids) * planes.normals).sum(axis=1, keepdims=True)
    return points - height * planes.normals


def project_to_quadrics(
    points: np.ndarray,
    normals: np.ndarray,
    scale: QuadricScale | int,
    tree: cKDTree | None = None,
    chunk: int = CHUNK,
) -> QuadricProjection:
    """Each point moved onto a quadric fitted to its neighbourhood, with the quadric's normal there.

    For each point, those of its k nearest neighbours (itself included) whose normals face the same
    side as its own (positive dot product) get a local frame from weighted PCA, and their heights
    above the tangent plane a weighted least-squares quadric ``h(u, v) = c0 + c1 u + c2 v + c3 u^2 +
    c4 uv + c5 v^2``; the point moves to ``h`` at its own (u, v), and its normal becomes the quadric's
    there. The side test keeps the two faces of a thin part (an ear, a fin) from being averaged into
    one. Unlike a plane, the quadric follows the surface's curvature, so repeated rounds do not shrink
    curved parts. A point with fewer than MIN_QUADRIC_NEIGHBOURS such neighbours stays as it is.
    Memory is O(chunk) beyond the points: a batch holds at most ``chunk`` x CHUNK_NEIGHBOURS neighbours.

    Args:
        points: (N, 3) in any units; normals: (N, 3) unit normals, consistently oriented (the side
            test and the returned normals' signs follow them); scale: the neighbourhood (a bare int k
            weighs k neighbours equally; k is capped at N); tree: a cKDTree of ``points``, if built;
        chunk: points per batch of fits at CHUNK_NEIGHBOURS neighbours (fewer at more).
    """
    scale = QuadricScale(scale) if isinstance(scale, int) else scale
    points = np.asarray(points, dtype=np.float64)
    tree = tree or cKDTree(points)
    moved, fitted = points.copy(), np.array(normals, dtype=np.float64)
    residuals = np.full(len(points), np.inf)
    chunk = max(1, chunk * CHUNK_NEIGHBOURS // scale.neighbours)
    for start, distances, indices in neighbour_chunks(tree, points, scale.neighbours, chunk):
        rows = slice(start, start + len(indices))
        own, own_normal = points[rows], fitted[rows].copy()
        same_side = (normals[indices] * own_normal[:, None, :]).sum(-1) > 0  # (c, k)
        weight = same_side.astype(np.float64)
        if scale.width is not None:
            reach = scale.width * distances[:, -1:] + 1e-300
            weight *= np.exp(-((distances / reach) ** 2))
        count = weight.sum(1)
        enough = same_side.sum(1) >= MIN_QUADRIC_NEIGHBOURS
        neighbourhood = points[indices]  # (c, k, 3)
        centroid = (weight[..., None] * neighbourhood).sum(1) / np.maximum(count, 1e-300)[:, None]  # (c, 3)
        centred = neighbourhood - centroid[:, None, :]
        _, frame = np.linalg.eigh(np.einsum("ck,cki,ckj->cij", weight, centred, centred))  # normal, then tangents
        frame[:, :, 0] *= np.where((frame[:, :, 0] * own_normal).sum(1) < 0, -1.0, 1.0)[:, None]
        local = np.einsum("cki,cij->ckj", centred, frame)  # (c, k, 3): height, v, u
        spread = np.sqrt((weight * (local[..., 1:] ** 2).sum(-1)).sum(1) / np.maximum(count, 1e-300)) + 1e-300
        design = _quadric_terms(local[..., 2] / spread[:, None], local[..., 1] / spread[:, None])  # (c, k, 6)
        normal_matrix = np.einsum("ck,ckm,ckn->cmn", weight, design, design) + QUADRIC_RIDGE * np.eye(6)
        right = np.einsum("ck,ckm,ck->cm", weight, design, local[..., 0])[..., None]
        coefficients = np.linalg.solve(normal_matrix, right)[..., 0]  # (c, 6)
        off = local[..., 0] - (design * coefficients[:, None, :]).sum(-1)  # (c, k) heights off the quadric
        own_local = np.einsum("ci,cij->cj", own - centroid, frame)
        u, v = own_local[:, 2] / spread, own_local[:, 1] / spread
        height = (_quadric_terms(u, v) * coefficients).sum(1)
        c1, c2, c3, c4, c5 = coefficients[:, 1:].T
        slope_u, slope_v = (c1 + 2 * c3 * u + c4 * v) / spread, (c2 + c4 * u + 2 * c5 * v) / spread
        normal = frame[:, :, 0] - slope_u[:, None] * frame[:, :, 2] - slope_v[:, None] * frame[:, :, 1]
        normal /= np.linalg.norm(normal, axis=1, keepdims=True)
        moved[rows] = np.where(enough[:, None], own + (height - own_local[:, 0])[:, None] * frame[:, :, 0], own)
        fitted[rows] = np.where(enough[:, None], normal, own_normal)
        residuals[rows] = np.where(enough, (weight * off**2).sum(1) / np.maximum(count, 1e-300), np.inf)
    return QuadricProjection(moved, fitted, residuals)


def project_to_quadrics_adaptive(
    points: np.ndarray,
    normals: np.ndarray,
    scales: tuple[QuadricScale, ...],
    residual_ratio: float,
    tree: cKDTree | None = None,
) -> QuadricProjection:
    """:func:`project_to_quadrics` at each of ``scales`` (narrowest first), each point keeping the widest
    scale whose fit's residual is at most ``residual_ratio`` times the narrowest one's.

    On a smooth patch every scale fits about as well, and the widest averages the most noise; on detail
    finer than the wide neighbourhood (a dragon's scales, a whisker) the wide quadric cannot follow it, its
    residual grows, and the narrow fit is kept. Arguments as for :func:`project_to_quadrics`; the
    residuals returned are those of the scale kept.
    """
    tree = tree or cKDTree(points)
    narrowest, *wider_fits = (project_to_quadrics(points, normals, scale, tree) for scale in scales)
    moved, fitted, residuals = narrowest.points.copy(), narrowest.normals.copy(), narrowest.residuals.copy()
    for wider in wider_fits:
        better = wider.residuals <= residual_ratio * narrowest.residuals
        moved[better], fitted[better], residuals[better] = (
            wider.points[better],
            wider.normals[better],
            wider.residuals[better],
        )
    return QuadricProjection(moved, fitted, residuals)


def _quadric_terms(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(..., 6) monomials 1, u, v, u^2, uv, v^2 of (...) coordinates."""
    return np.stack([np.ones_like(u), u, v, u * u, u * v, v * v], axis=-1)
