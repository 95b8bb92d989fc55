"""Per-face quantities of a triangle mesh: (V, 3) vertices and (F, 3) vertex indices, wound counter-clockwise
seen from outside."""

from __future__ import annotations

import numpy as np


def face_cross_products(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F, 3) ``(b - a) x (c - a)`` of each face (a, b, c): along the outward normal, twice the face's area long."""
    corners = vertices[faces]
    return np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])


def face_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F,) triangle areas, in squared vertex units."""
    return 0.5 * np.linalg.norm(face_cross_products(vertices, faces), axis=1)


def face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F, 3) unit outward normals; zeros for faces without area."""
    cross = face_cross_products(vertices, faces)
    return cross / np.maximum(np.linalg.norm(cross, axis=1, keepdims=True), 1e-300)
