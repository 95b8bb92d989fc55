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
* :func:`project_to_quadrics` -- moves each point onto a quadric height field
  fitted to its neighbourhood (an osculating jet, Cazals and Pouget 2005),
  which averages noise over the neighbourhood without the shrinkage of a plane
  fit on curved parts (it still rounds sharp edges).
"""

from __future__ import annotations

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


def project_to_quadrics(points: np.ndarray, k: int, tree: cKDTree | None = None, chunk: int = CHUNK) -> np.ndarray:
    """(N, 3) points each moved along its neighbourhood's normal onto a quadric fitted to its neighbourhood.

    For each point, its k nearest neighbours (itself included) get a local frame from PCA (the
    normal: the covariance's least eigenvector), and their heights above the tangent plane a
    least-squares quadric ``h(u, v) = c0 + c1 u + c2 v + c3 u^2 + c4 uv + c5 v^2``; the point moves
    to ``h`` at its own (u, v). Unlike a plane, the quadric follows the surface's curvature, so
    repeated rounds do not shrink curved parts. Memory is O(chunk k) beyond the points.

    Args:
        points: (N, 3) in any units; k: neighbours per fit (at least 6; capped at N);
        tree: a cKDTree of ``points``, if built; chunk: points per batch of fits.
    """
    points = np.asarray(points, dtype=np.float64)
    tree = tree or cKDTree(points)
    moved = np.empty_like(points)
    for start, _, indices in neighbour_chunks(tree, points, k, chunk):
        own = points[start : start + len(indices)]
        neighbourhood = points[indices]  # (c, k, 3)
        centroid = neighbourhood.mean(axis=1, keepdims=True)
        centred = neighbourhood - centroid
        _, frame = np.linalg.eigh(np.einsum("cki,ckj->cij", centred, centred))  # columns: normal, then tangents
        local = np.einsum("cki,cij->ckj", centred, frame)  # (c, k, 3): height, v, u
        scale = np.sqrt((local[..., 1:] ** 2).sum(-1).mean(1))[:, None] + 1e-300  # unit RMS in the plane
        design = _quadric_terms(local[..., 2] / scale, local[..., 1] / scale)  # (c, k, 6)
        normal_matrix = np.einsum("ckm,ckn->cmn", design, design) + QUADRIC_RIDGE * np.eye(6)
        coefficients = np.linalg.solve(normal_matrix, np.einsum("ckm,ck->cm", design, local[..., 0])[..., None])
        own_local = np.einsum("ci,cij->cj", own - centroid[:, 0], frame)
        own_terms = _quadric_terms(own_local[:, 2:] / scale, own_local[:, 1:2] / scale)  # (c, 1, 6)
        height = (own_terms @ coefficients)[:, 0, 0]
        moved[start : start + len(indices)] = own + (height - own_local[:, 0])[:, None] * frame[:, :, 0]
    return moved


def _quadric_terms(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(..., 6) monomials 1, u, v, u^2, uv, v^2 of (...) coordinates."""
    return np.stack([np.ones_like(u), u, v, u * u, u * v, v * v], axis=-1)
