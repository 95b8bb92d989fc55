"""Nearest-neighbour distances in bounded memory: a k-d tree queried a chunk at a time.

Distances are in the units of the points given.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from rbfield.ops import tree_query

#: Query points per k-d tree call: with k = 1 each chunk holds about 6 MB of
#: scipy's results, whatever the number of points.
QUERY_CHUNK = 2**18


def nearest(
    tree: cKDTree, queries: np.ndarray, chunk: int = QUERY_CHUNK, indices: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Distance from each query point to its nearest point in ``tree``.

    Args:
        tree: a k-d tree of (M, 3) points, M >= 1.
        queries: (Q, 3) points.
        chunk: query points per call.
        indices: also return the nearest point's row (else None, and Q int64s fewer in memory).

    Returns:
        distances (Q,) float64 and, if asked, indices (Q,) int64 into the tree's points.
    """
    distances = np.empty(len(queries), dtype=np.float64)
    rows = np.empty(len(queries), dtype=np.int64) if indices else None
    for start in range(0, len(queries), chunk):
        part = np.asarray(queries[start : start + chunk], dtype=np.float64)
        found, index = tree_query(tree.query, part, k=1)
        distances[start : start + len(part)] = found
        if indices:
            rows[start : start + len(part)] = index
    return distances, rows
