"""Floaters out of extracted meshes: keep only the connected pieces that matter.

Marching cubes on a fitted field (an SDF's zero set, a radiance field's
density level) also triangulates small spurious pockets: sign errors of the
field off the surface, inside or outside the object. They are separate
connected pieces with a tiny share of the area, so the rule is by area:
pieces with less than :data:`MIN_PIECE_SHARE` of the largest piece's area go.
A scan made of several genuinely separate parts keeps every part above that
share; pass ``min_share=0`` to keep everything.
"""

from __future__ import annotations

import numpy as np

from rbfield.geometry.triangles import face_areas

#: Mesh pieces with less area than this share of the largest piece's are dropped.
MIN_PIECE_SHARE = 0.01


def face_pieces(n_vertices: int, faces: np.ndarray) -> np.ndarray:
    """(F,) index of the connected piece (faces joined by shared vertices) of each face."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]]])
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n_vertices, n_vertices))
    _, vertex_piece = connected_components(graph, directed=False)
    return vertex_piece[faces[:, 0]]


def drop_small_pieces(vertices: np.ndarray, faces: np.ndarray, min_share: float) -> tuple[np.ndarray, np.ndarray]:
    """Keep the connected pieces of a mesh with at least ``min_share`` of the largest piece's area.

    Args:
        vertices: (V, 3) positions; faces: (F, 3) vertex indices (pieces share no vertex).

    Returns:
        kept (V',) indices into ``vertices`` and (F', 3) faces renumbered into them.
    """
    if len(faces) == 0:
        return np.arange(len(vertices)), faces
    piece = face_pieces(len(vertices), faces)
    piece_area = np.bincount(piece, face_areas(vertices, faces))
    faces = faces[piece_area[piece] >= min_share * piece_area.max()]
    kept = np.unique(faces)
    return kept, np.searchsorted(kept, faces)
