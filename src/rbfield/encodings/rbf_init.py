"""Data-driven initialisation of RBF centres and shapes (NeuRBF Sec. 3.3).

Centres come from weighted k-means: seeds drawn in proportion to the point
weights, then Lloyd iterations with weighted means. Each shape is the weighted
covariance of its cluster divided by ``alpha`` (0.5 for images and SDFs, 0.3
for NeRF), its eigenvalues clipped to a sane range, then inverted.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree

from rbfield.ops import tree_query

#: Point-to-centre assignments one placement may make (sample size x (Lloyd iterations + 1)). Up to
#: 3 million points this allows the full 10 iterations; larger samples (hundreds of thousands of
#: kernels, large images) get fewer, down to 3, so placement stays in seconds. On a 2560x1600 photo
#: with 20,000 kernels, the weighted k-means objective over every pixel rose by 8.5 % with 4
#: iterations on 32 points per kernel and 13 % with 3 on 16, against 10 on 64
#: (``bench/kmeans_budget.py``); two seeds of the same setting differ by up to 8 %.
KMEANS_WORK = 2**25


#: Points handled at a time by the assignment and the sums, so that the per-point temporaries
#: (distances, gathered centres, products) stay small beside the sample itself.
CHUNK_POINTS = 2**21


def _chunks(n_points: int) -> list[slice]:
    return [slice(start, min(start + CHUNK_POINTS, n_points)) for start in range(0, n_points, CHUNK_POINTS)]


def lloyd_iterations(n_points: int) -> int:
    """Lloyd iterations for a sample of ``n_points`` within :data:`KMEANS_WORK` (between 3 and 10)."""
    return int(np.clip(KMEANS_WORK // max(n_points, 1) - 1, 3, 10))


def weighted_kmeans(
    points: np.ndarray,
    weights: np.ndarray,
    n_clusters: int,
    n_iterations: int | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted k-means (Lloyd).

    Args:
        points: (M, d) float32 or float64 sample positions (float32 halves the sample's memory;
            the arithmetic is float64 either way).
        weights: (M,) non-negative float64 weights (at least n_clusters positive).
        n_clusters: N.
        n_iterations: Lloyd iterations after seeding; None for :func:`lloyd_iterations` of the sample.
        seed: seed for drawing the initial centres.

    Returns:
        centres (N, d) float64 and the cluster of every point, (M,) int64.
        A cluster that loses all its points keeps its previous centre.
    """
    if n_iterations is None:
        n_iterations = lloyd_iterations(points.shape[0])
    rng = np.random.default_rng(seed)
    probabilities = weights / weights.sum()
    seeds = rng.choice(points.shape[0], size=n_clusters, replace=False, p=probabilities)
    del probabilities
    centres = points[seeds].astype(np.float64)
    assignment = np.zeros(points.shape[0], dtype=np.int64)
    for _ in range(n_iterations + 1):
        query = cKDTree(centres).query
        mass = np.zeros(n_clusters)
        moments = np.zeros((points.shape[1], n_clusters))
        for chunk in _chunks(points.shape[0]):
            assignment[chunk] = tree_query(query, points[chunk], k=1)[1]
            mass += np.bincount(assignment[chunk], weights=weights[chunk], minlength=n_clusters)
            for axis in range(points.shape[1]):
                product = weights[chunk] * points[chunk, axis]
                moments[axis] += np.bincount(assignment[chunk], weights=product, minlength=n_clusters)
        occupied = mass > 0
        centres[occupied] = (moments[:, occupied] / mass[occupied]).T
    return centres, assignment


def cluster_covariances(
    points: np.ndarray,
    weights: np.ndarray,
    centres: np.ndarray,
    assignment: np.ndarray,
    alpha: float,
    min_std: float,
    max_std: float,
) -> np.ndarray:
    """Weighted covariance of each cluster, divided by alpha and eigen-clipped.

    Args:
        points, weights, centres, assignment: as from :func:`weighted_kmeans`.
        alpha: the covariance is divided by this (NeuRBF: 0.5 image/SDF, 0.3 NeRF).
        min_std, max_std: bounds on each principal standard deviation, in domain units.

    Returns:
        (N, d, d) symmetric positive-definite covariances. Clusters with no
        weight get an isotropic covariance with standard deviation max_std.

    Memory: O(N d^2) beside the inputs; the points are taken :data:`CHUNK_POINTS` at a time.
    """
    n_clusters, dim = centres.shape
    covariance = np.zeros((n_clusters, dim, dim))
    mass = np.zeros(n_clusters)
    for chunk in _chunks(points.shape[0]):
        delta = points[chunk] - centres[assignment[chunk]]
        for row in range(dim):
            for col in range(row, dim):
                product = delta[:, row] * delta[:, col] * weights[chunk]
                covariance[:, row, col] += np.bincount(assignment[chunk], weights=product, minlength=n_clusters)
        mass += np.bincount(assignment[chunk], weights=weights[chunk], minlength=n_clusters)
    rows, cols = np.triu_indices(dim, k=1)
    covariance[:, cols, rows] = covariance[:, rows, cols]
    empty = mass <= 0
    covariance[~empty] /= mass[~empty, None, None]
    covariance /= alpha
    covariance[empty] = np.eye(dim) * max_std**2
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    eigenvalues = np.clip(eigenvalues, min_std**2, max_std**2)
    return (eigenvectors * eigenvalues[:, None, :]) @ eigenvectors.transpose(0, 2, 1)


def initial_rbf_geometry(
    points: torch.Tensor,
    weights: torch.Tensor,
    n_kernels: int,
    spacing: float,
    alpha: float,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Centres and covariances for N kernels from weighted samples of a signal.

    Args:
        points: (M, d) sample positions in the field's domain.
        weights: (M,) importance of each sample (e.g. gradient magnitude).
        n_kernels: N; must not exceed M.
        spacing: typical distance between samples (e.g. one pixel), which sets
            the smallest allowed kernel: std >= spacing / 2.
        alpha: covariance divisor (see :func:`cluster_covariances`).
        seed: seed for the k-means seeding.

    Returns:
        centres (N, d) and covariances (N, d, d), float32.
    """
    points_np = points.detach().cpu().numpy()  # as given (float32 from the signals), never changed
    weights_np = weights.detach().cpu().numpy().astype(np.float64)  # a copy: changed in place below
    np.clip(weights_np, 0, None, out=weights_np)
    # A floor keeps every cluster's weight positive and lets flat regions get
    # a few kernels too; it is small against typical gradient magnitudes.
    weights_np += 1e-3 * max(weights_np.mean(), 1e-12)
    centres, assignment = weighted_kmeans(points_np, weights_np, n_kernels, seed=seed)
    extent = float((points_np.max(0) - points_np.min(0)).max())
    covariances = cluster_covariances(
        points_np,
        weights_np,
        centres,
        assignment,
        alpha,
        min_std=0.5 * spacing,
        max_std=max(0.25 * extent, spacing),
    )
    return torch.from_numpy(centres).float(), torch.from_numpy(covariances).float()
