"""Topological defects of a triangle mesh, counted over its undirected edges.

A clean closed surface has every edge shared by exactly two faces that run
along it in opposite directions (consistent winding). Three defects break
that, and each means something different for a fit:

* an *open* edge belongs to one face: the mesh has holes, so inside and
  outside come from generalised winding numbers, which tolerate them;
* a *non-manifold* edge belongs to three or more faces;
* a *misoriented* edge is shared by two faces that run along it in the same
  direction: one of them is flipped against its neighbour, so its normal
  points the wrong way and the winding numbers near it are off.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EdgeDefects:
    """Counts of undirected edges by defect (see the module docstring)."""

    open: int
    non_manifold: int
    misoriented: int


def edge_defects(faces: np.ndarray) -> EdgeDefects:
    """Count open, non-manifold and misoriented edges of a triangle mesh.

    Args:
        faces: (F, 3) int vertex indices; vertex positions play no part.
    """
    faces = np.asarray(faces, dtype=np.int64)
    starts = faces.reshape(-1)
    ends = np.roll(faces, -1, axis=1).reshape(-1)  # face (a, b, c) runs a->b, b->c, c->a
    low, high = np.minimum(starts, ends), np.maximum(starts, ends)
    keys = low * (int(faces.max(initial=0)) + 1) + high
    _, edge, uses = np.unique(keys, return_inverse=True, return_counts=True)
    ascending = np.bincount(edge.reshape(-1), weights=(starts < ends), minlength=len(uses))
    shared_by_two = uses == 2
    return EdgeDefects(
        open=int((uses == 1).sum()),
        non_manifold=int((uses > 2).sum()),
        misoriented=int((shared_by_two & (ascending != 1)).sum()),
    )
