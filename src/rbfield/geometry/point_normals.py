"""Normals of a raw point cloud: local plane fits, then one consistent orientation.

* :func:`local_planes` fits a plane to each point's k nearest neighbours (PCA):
  the normal is the covariance's eigenvector of least eigenvalue, up to sign.
  k-NN neighbourhoods adapt to the sampling density by themselves.
* :func:`orient_normals` makes the signs agree (Hoppe et al., SIGGRAPH 1992):
  over a k-NN graph weighted by ``1 - |n_i . n_j|``, signs are propagated
  along the minimum spanning tree, so they cross the surface where it is
  flattest. Then each connected piece is turned as a whole so that its normals
  point out: by the sign of the volume the oriented points enclose
  (:func:`piece_volumes`, the divergence theorem), or, for a piece too flat
  to enclose any (an open, flat scan), so that its highest point's normal
  points up (+z), Hoppe's seed.

Memory stays O(N k): neighbours are queried a chunk at a time and the graph
is a sparse matrix (scipy.sparse.csgraph).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order, connected_components, minimum_spanning_tree
from scipy.spatial import cKDTree

from rbfield.ops import tree_query

#: Neighbours of each point's plane fit (the point included).
PLANE_NEIGHBOURS = 16
#: Neighbours of each point in the orientation graph (the point excluded).
GRAPH_NEIGHBOURS = 8
#: Points per chunk of neighbour queries.
CHUNK = 2**16
#: Added to every graph weight: csgraph drops edges of weight exactly 0.
WEIGHT_FLOOR = 1e-6
#: A piece whose |enclosed volume| is below this share of (its area x its extent) is flat: its
#: outward side comes from its highest point instead.
FLAT_VOLUME_SHARE = 0.01


@dataclass
class LocalPlanes:
    """Plane fits at every point (N points).

    Attributes:
        normals: (N, 3) unit normals, signs arbitrary.
        centroids: (N, 3) the neighbourhoods' centroids (input units).
        residuals: (N,) RMS distance of the neighbours from the plane (input units).
        spacing: (N,) mean distance to the neighbours (input units).
    """

    normals: np.ndarray
    centroids: np.ndarray
    residuals: np.ndarray
    spacing: np.ndarray


def neighbour_chunks(tree: cKDTree, points: np.ndarray, k: int, chunk: int = CHUNK):
    """Yield (start, distances (c, k), indices (c, k)) of each point's k nearest
    points in ``tree`` (itself first when it is in the tree), ``chunk`` points at a time."""
    k = min(k, tree.n)
    for start in range(0, len(points), chunk):
        distances, indices = tree_query(tree.query, points[start : start + chunk], k=k)
        yield start, np.asarray(distances).reshape(-1, k), np.asarray(indices).reshape(-1, k)


def local_planes(points: np.ndarray, k: int = PLANE_NEIGHBOURS, tree: cKDTree | None = None) -> LocalPlanes:
    """PCA plane of each point's k nearest neighbours (itself included).

    Args:
        points: (N, 3) in input units; k: neighbourhood size (capped at N);
        tree: a cKDTree of ``points``, if one is already built.
    """
    points = np.asarray(points, dtype=np.float64)
    tree = tree or cKDTree(points)
    n = len(points)
    planes = LocalPlanes(np.empty((n, 3)), np.empty((n, 3)), np.empty(n), np.empty(n))
    for start, distances, indices in neighbour_chunks(tree, points, k):
        stop = start + len(indices)
        neighbourhood = points[indices]  # (c, k, 3)
        centroid = neighbourhood.mean(axis=1)
        centred = neighbourhood - centroid[:, None, :]
        covariance = np.einsum("cki,ckj->cij", centred, centred) / indices.shape[1]
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)  # ascending
        planes.normals[start:stop] = eigenvectors[:, :, 0]
        planes.centroids[start:stop] = centroid
        planes.residuals[start:stop] = np.sqrt(np.maximum(eigenvalues[:, 0], 0.0))
        planes.spacing[start:stop] = distances[:, 1:].mean(axis=1) if distances.shape[1] > 1 else 0.0
    return planes


def _graph(tree: cKDTree, points: np.ndarray, normals: np.ndarray, k: int):
    """The k-NN graph as a sparse (N, N) matrix of weights 1 - |n_i . n_j| + WEIGHT_FLOOR."""
    rows, cols, weights = [], [], []
    for start, _, indices in neighbour_chunks(tree, points, k + 1):
        source = np.repeat(np.arange(start, start + len(indices)), indices.shape[1] - 1)
        target = indices[:, 1:].reshape(-1)
        cosine = np.abs((normals[source] * normals[target]).sum(axis=1))
        rows.append(source.astype(np.int32))
        cols.append(target.astype(np.int32))
        weights.append(1.0 - cosine + WEIGHT_FLOOR)
    n = len(points)
    return coo_matrix((np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)).tocsr()


def _parities(parents: np.ndarray, flips: np.ndarray) -> np.ndarray:
    """Each node's parity (True: flip) relative to its tree's root, by pointer jumping.

    Args:
        parents: (N,) each node's parent; a root is its own parent.
        flips: (N,) bool, whether a node's sign differs from its parent's (False at roots).
    """
    parents, parity = parents.copy(), flips.copy()
    while True:
        grand = parents[parents]
        if np.array_equal(grand, parents):
            return parity
        parity ^= parity[parents]
        parents = grand


def piece_volumes(
    points: np.ndarray, normals: np.ndarray, areas: np.ndarray, pieces: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Volume each piece of oriented surface samples encloses, by the divergence
    theorem: ``sum(area * (p - c) . n) / 3`` over the piece (c its points' mean).
    It is positive when the normals point out of a closed surface, whatever its
    shape, and near 0 for a flat patch.

    Args:
        points, normals: (N, 3); areas: (N,) surface area each sample stands for;
        pieces: (N,) piece index of each point, 0..P-1, every piece non-empty.

    Returns:
        volumes (P,) and sizes (P,): each piece's area times its bounding box's longest side,
        the volume's natural scale.
    """
    counts = np.bincount(pieces)
    centres = np.stack([np.bincount(pieces, points[:, axis]) for axis in range(3)], axis=1) / counts[:, None]
    moments = areas * ((points - centres[pieces]) * normals).sum(axis=1)
    order = np.argsort(pieces, kind="stable")
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    spans = np.maximum.reduceat(points[order], starts) - np.minimum.reduceat(points[order], starts)
    return np.bincount(pieces, moments) / 3.0, np.bincount(pieces, areas) * spans.max(axis=1)


@dataclass
class Orientation:
    """Result of :func:`orient_normals`.

    Attributes:
        normals: (N, 3) consistently oriented unit normals.
        pieces: (N,) index of each point's connected piece of the k-NN graph.
        flat_pieces: pieces oriented by their highest point (too flat to enclose a volume).
    """

    normals: np.ndarray
    pieces: np.ndarray
    flat_pieces: int


def orient_normals(
    points: np.ndarray,
    normals: np.ndarray,
    spacing: np.ndarray,
    k: int = GRAPH_NEIGHBOURS,
    tree: cKDTree | None = None,
) -> Orientation:
    """Consistently oriented normals (Hoppe et al. 1992), each piece turned outward.

    Args:
        points: (N, 3); normals: (N, 3) unit normals of either sign;
        spacing: (N,) local sample spacing (input units), for each point's share of the area;
        k: graph neighbours; tree: a cKDTree of ``points``, if one is built.
    """
    points = np.asarray(points, dtype=np.float64)
    tree = tree or cKDTree(points)
    n = len(points)
    forest = minimum_spanning_tree(_graph(tree, points, normals, k))
    n_pieces, pieces = connected_components(forest, directed=False)
    # A virtual root joined to each piece's first point turns the forest into one tree.
    firsts = np.unique(pieces, return_index=True)[1]
    forest = forest.tocoo()
    rows = np.concatenate([forest.row, np.full(n_pieces, n)])
    cols = np.concatenate([forest.col, firsts])
    tree_matrix = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n + 1, n + 1)).tocsr()
    _, parents = breadth_first_order(tree_matrix, n, directed=False, return_predecessors=True)
    parents = parents[:n]
    parents[firsts] = firsts
    flips = (normals * normals[parents]).sum(axis=1) < 0
    parity = _parities(parents, flips)
    oriented = np.where(parity[:, None], -normals, normals)

    volumes, sizes = piece_volumes(points, oriented, spacing**2, pieces)
    flat = np.abs(volumes) <= FLAT_VOLUME_SHARE * sizes
    by_height = np.lexsort((points[:, 2], pieces))  # by piece, then z ascending
    highest = by_height[np.cumsum(np.bincount(pieces)) - 1]
    outward = np.where(flat, oriented[highest, 2] >= 0, volumes > 0)
    oriented[~outward[pieces]] *= -1
    return Orientation(oriented, pieces, int(flat.sum()))
