"""Shape metrics with stated conventions (all distances in the caller's units;
rbfield passes unit-cube domain units, where the shape's longest side is 0.9).

Two surfaces A (prediction) and B (reference) are each represented by N points
sampled uniformly by area, with the normal of the face each point lies on.
For every point its nearest neighbour on the other surface is found (both
directions). Then:

* ``chamfer_l1`` = (mean_a |a - nn_B(a)| + mean_b |b - nn_A(b)|) / 2, Euclidean
  distances, not squared (Occupancy Networks' "Chamfer-L1");
* ``chamfer_l2`` = the same with squared distances;
* ``nae_deg`` = (mean_a angle(n_a, n_nn) + mean_b angle(n_b, n_nn)) / 2 in
  degrees, oriented normals (NeuRBF's definition: the mean *angle*, not a
  mean cosine turned into an angle);
* ``normal_consistency`` = the same average of |cos| (unoriented);
* ``fscore`` at tau = 2 P R / (P + R), P the fraction of A within tau of B
  and R the fraction of B within tau of A.

``sign_iou`` compares signs of two SDFs at the same query points:
|inside both| / |inside either|, as point counts or, given each point's
volume weight, as volumes. NeuRBF's released evaluation takes the regions
where sdf >= 0 (the outsides) at uniform samples of its domain;
``sign_iou(..., inside=False)`` gives that variant, which rbfield reports as
``iou`` (the insides' IoU as ``iou_inside``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from rbfield.geometry.nearest import nearest
from rbfield.geometry.triangles import face_cross_products

#: F-score threshold in unit-cube domain units (1% of the domain side).
FSCORE_TAU = 0.01


def sample_surface(vertices: np.ndarray, faces: np.ndarray, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n points uniformly by area on a triangle mesh, and their face normals.

    Args:
        vertices: (V, 3); faces: (F, 3) int.

    Returns:
        points (n, 3) and unit normals (n, 3), float64.
    """
    rng = np.random.default_rng(seed)
    corners = vertices[faces]  # (F, 3, 3)
    cross = face_cross_products(vertices, faces)
    doubled_areas = np.linalg.norm(cross, axis=1)
    chosen = rng.choice(len(faces), size=n, p=doubled_areas / doubled_areas.sum())
    u, v = rng.random(n), rng.random(n)
    flip = u + v > 1
    u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
    c = corners[chosen]
    points = c[:, 0] + u[:, None] * (c[:, 1] - c[:, 0]) + v[:, None] * (c[:, 2] - c[:, 0])
    normals = cross[chosen] / doubled_areas[chosen, None].clip(min=1e-300)
    return points, normals


@dataclass(frozen=True)
class NearestPairs:
    """Each point of A paired with its nearest point of B, and each point of B with its nearest of A.

    Attributes:
        distance_ab, index_ab: (N,) distances (the points' units) and rows of B, one per point of A.
        distance_ba, index_ba: (M,) distances and rows of A, one per point of B.
    """

    distance_ab: np.ndarray
    index_ab: np.ndarray
    distance_ba: np.ndarray
    index_ba: np.ndarray

    @classmethod
    def of(cls, points_a: np.ndarray, points_b: np.ndarray) -> NearestPairs:
        """Pairs of (N, 3) points A and (M, 3) points B, both non-empty (k-d trees queried in chunks)."""
        distance_ab, index_ab = nearest(cKDTree(points_b), points_a)
        distance_ba, index_ba = nearest(cKDTree(points_a), points_b)
        return cls(distance_ab, index_ab, distance_ba, index_ba)


def fscore(pairs: NearestPairs, tau: float) -> tuple[float, float, float]:
    """F-score, precision (share of A within tau of B) and recall (share of B within tau of A)."""
    precision = float((pairs.distance_ab < tau).mean())
    recall = float((pairs.distance_ba < tau).mean())
    score = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return score, precision, recall


def pair_metrics(pairs: NearestPairs, normals_a: np.ndarray, normals_b: np.ndarray, tau: float) -> dict:
    """Chamfer L1/L2, NAE (degrees), normal consistency and F-score at tau from nearest pairs.

    Args:
        pairs: nearest pairs of A's and B's points.
        normals_a, normals_b: (N, 3) and (M, 3) unit normals at those points.
        tau: F-score distance threshold, in the points' units.
    """
    cos_ab = np.clip((normals_a * normals_b[pairs.index_ab]).sum(1), -1.0, 1.0)
    cos_ba = np.clip((normals_b * normals_a[pairs.index_ba]).sum(1), -1.0, 1.0)
    score, precision, recall = fscore(pairs, tau)
    return {
        "chamfer_l1": float((pairs.distance_ab.mean() + pairs.distance_ba.mean()) / 2),
        "chamfer_l2": float(((pairs.distance_ab**2).mean() + (pairs.distance_ba**2).mean()) / 2),
        "nae_deg": float((np.degrees(np.arccos(cos_ab)).mean() + np.degrees(np.arccos(cos_ba)).mean()) / 2),
        "normal_consistency": float((np.abs(cos_ab).mean() + np.abs(cos_ba).mean()) / 2),
        "fscore": score,
        "precision": precision,
        "recall": recall,
    }


def surface_metrics(
    points_a: np.ndarray,
    normals_a: np.ndarray,
    points_b: np.ndarray,
    normals_b: np.ndarray,
    tau: float = FSCORE_TAU,
) -> dict:
    """Chamfer L1/L2, NAE (degrees), normal consistency and F-score of A against B.

    Args:
        points_a, normals_a: (N, 3) samples of the prediction and unit normals.
        points_b, normals_b: (M, 3) samples of the reference and unit normals.
        tau: F-score distance threshold.
    """
    return pair_metrics(NearestPairs.of(points_a, points_b), normals_a, normals_b, tau)


def sign_iou(
    predicted_sdf: np.ndarray, reference_sdf: np.ndarray, weights: np.ndarray | None = None, inside: bool = True
) -> float:
    """IoU of the insides (sdf < 0) of two SDFs sampled at the same points, or
    with ``inside=False`` of their outsides (sdf >= 0).

    Without weights it counts points. With (P,) volume weights (each point's
    1 / sampling density) it estimates |A and B| / |A or B| as volumes."""
    region_p, region_r = predicted_sdf < 0, reference_sdf < 0
    if not inside:
        region_p, region_r = ~region_p, ~region_r
    weights = np.ones(len(region_p)) if weights is None else weights
    union = weights[np.logical_or(region_p, region_r)].sum()
    return 1.0 if union == 0 else float(weights[np.logical_and(region_p, region_r)].sum() / union)
