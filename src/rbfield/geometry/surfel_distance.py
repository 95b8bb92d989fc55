"""Signed distance to an oriented point cloud, treating each point as a surfel.

Each input point p with unit normal n stands for a small disc of radius r
(a surfel) in the plane through p normal to n; r is a fixed fraction of the
distance from p to its ``RADIUS_NEIGHBOUR``-th nearest other point, so that
the discs roughly tile the sampled surface. For a query point q and one surfel,
with ``a = (q - p) . n`` (height above the plane) and ``t`` the distance from
p within the plane, the distance to the disc is ``sqrt(a^2 + max(t - r, 0)^2)``.

* unsigned distance: the smallest disc distance over q's
  ``QUERY_NEIGHBOURS`` nearest points (near the surface this is the
  point-to-plane distance, not the distance to the nearest sample point,
  which would overestimate it by up to half the sample spacing);
* sign: a vote of ``sign(a)`` over the same surfels, each weighted by
  ``1 / (disc distance^2 + SIGN_EPS)``, so that the closest surfels decide
  (positive outside, where the normals point).

This gives training targets for fitting an SDF to a point cloud with the same
loss as a mesh (surfels: Pfister et al., SIGGRAPH 2000).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from rbfield.ops import tree_query

#: The k-th nearest other input point sets a surfel's radius.
RADIUS_NEIGHBOUR = 4
#: Surfel radius as a fraction of that distance.
RADIUS_FRACTION = 0.8
#: Surfels considered per query point.
QUERY_NEIGHBOURS = 8
#: Keeps the sign weights finite on a surfel (squared domain units).
SIGN_EPS = 1e-12


class SurfelDistance:
    """Signed distance to an oriented point cloud.

    Args:
        points: (N, 3) input points; normals: (N, 3) unit outward normals.

    Attributes:
        spacing: (N,) distance from each point to its RADIUS_NEIGHBOUR-th nearest other point.
        radii: (N,) the surfels' radii, RADIUS_FRACTION * spacing.
    """

    def __init__(self, points: np.ndarray, normals: np.ndarray):
        self.points = np.asarray(points, dtype=np.float64)
        self.normals = np.asarray(normals, dtype=np.float64)
        self.tree = cKDTree(self.points)
        k = min(RADIUS_NEIGHBOUR + 1, len(self.points))
        distances, _ = tree_query(self.tree.query, self.points, k=k)
        self.spacing = np.asarray(distances).reshape(len(self.points), k)[:, -1]
        self.radii = RADIUS_FRACTION * self.spacing

    def __call__(self, queries: np.ndarray) -> np.ndarray:
        """(Q, 3) query points -> (Q,) signed distances (domain units, negative inside)."""
        queries = np.asarray(queries, dtype=np.float64)
        k = min(QUERY_NEIGHBOURS, len(self.points))
        _, index = tree_query(self.tree.query, queries, k=k)
        index = np.asarray(index).reshape(len(queries), k)
        offset = queries[:, None, :] - self.points[index]  # (Q, k, 3)
        height = (offset * self.normals[index]).sum(-1)  # (Q, k)
        in_plane = np.sqrt(np.maximum((offset**2).sum(-1) - height**2, 0.0))
        beyond_rim = np.maximum(in_plane - self.radii[index], 0.0)
        disc_distance = np.sqrt(height**2 + beyond_rim**2)
        vote = (np.sign(height) / (disc_distance**2 + SIGN_EPS)).sum(1)
        return np.where(vote >= 0.0, 1.0, -1.0) * disc_distance.min(1)
