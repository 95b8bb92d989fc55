"""k-nearest-centre search for adaptive RBFs.

On the CPU a SciPy k-d tree answers queries (multi-threaded). An index that is
queried again and again (training on fresh points every step, evaluation on
large grids) also builds a :class:`CandidateGrid` once: per voxel of a regular
grid, the centres that can be among the k nearest of any point in the voxel.
A query then sorts its points by voxel and, voxel by voxel, ranks only the
list's centres in compiled kernels, several times faster than the tree. Points
outside the grid's box, or in the few voxels whose list was capped, still go
to the tree, so the result is exact either way.
On other devices a chunked brute-force distance + top-k runs on the device
itself, so the same field code works on CUDA and MPS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial import cKDTree

from rbfield.ops import cpu_workers, numba_kernels, point_chunks, tree_query

_BRUTE_FORCE_CHUNK = 8192
#: Voxels of a candidate grid (about 2**(18/d) per axis: 64^3 in 3-D, 512^2 in 2-D).
GRID_VOXELS = 2**18
#: Candidates first listed per voxel. About 3 % of the voxels of a
#: 500K-parameter bunny SDF field need more; they are listed again with 4x as
#: many, and so on up to GRID_MAX_CANDIDATES.
GRID_FIRST_CANDIDATES = 160
#: Longest candidate list kept; voxels needing more fall back to the tree.
GRID_MAX_CANDIDATES = 2560
#: Points answered by the tree before a candidate grid is built. A build takes
#: about as long as tree queries of 2**22 points (3 s for 7,700 centres in
#: 3-D on 2 threads); waiting for 2**20 spares one-off and lightly used
#: indexes that cost, and an SDF fit of 2**12 points a step builds at step 256.
GRID_AFTER_POINTS = 2**20
#: Neighbours asked of the tree per build query (voxels x list length).
_GRID_BUILD_ENTRIES = 2**15 * GRID_FIRST_CANDIDATES
#: Tree queries of fewer points run on one thread.
_TREE_THREADS_FROM = 4096


@dataclass
class CandidateGrid:
    """Per-voxel candidate lists for exact k-nearest queries.

    A centre c can be among the k nearest of a point x in voxel V (centre v,
    half-diagonal h) only if |v - c| <= r_k(v) + 2h, where r_k(v) is the k-th
    nearest distance from v: x's k-th nearest distance is at most r_k(v) + h.

    Attributes:
        box_min: (d,) float64 corner of the gridded box; cells_per_unit: (d,)
            voxels per unit length; resolution: voxels per axis.
        offsets: (V + 1,) int64 and candidates: (M,) int32, voxel-major lists
            (voxel index = row-major over the axes).
        complete: (V,) bool, False where the list hit GRID_MAX_CANDIDATES.
        longest: the longest list. Every list holds at least k centres.
    """

    box_min: np.ndarray
    cells_per_unit: np.ndarray
    resolution: int
    offsets: np.ndarray
    candidates: np.ndarray
    complete: np.ndarray
    longest: int


def build_candidate_grid(tree: cKDTree, centres: np.ndarray, k: int) -> CandidateGrid:
    """Candidate lists for k-nearest queries over the box spanning [0, 1]^d and
    all centres.

    Args:
        tree: k-d tree over ``centres``; centres: (N, d) float64; k <= N.
    """
    n_centres, dim = centres.shape
    resolution = max(2, round(GRID_VOXELS ** (1.0 / dim)))
    box_min = np.minimum(centres.min(0), 0.0)
    box_max = np.maximum(centres.max(0), 1.0)
    cell = (box_max - box_min) / resolution
    axes = [box_min[a] + (np.arange(resolution) + 0.5) * cell[a] for a in range(dim)]
    voxel_centres = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, dim)
    reach = float(np.sqrt((cell**2).sum()))  # the voxel's diagonal: twice the half-diagonal h
    cap = min(max(GRID_MAX_CANDIDATES, k), n_centres)
    listed = min(max(GRID_FIRST_CANDIDATES, k), cap)
    counts, candidates, complete = _candidate_lists(tree, voxel_centres, k, listed, reach, n_centres)
    first_offsets = np.zeros(len(voxel_centres) + 1, np.int64)
    np.cumsum(counts, out=first_offsets[1:])
    # Voxels whose lists were cut short are listed again, 4x longer, until complete or at the cap.
    longer: dict[int, np.ndarray] = {}
    again = np.flatnonzero(~complete)
    while len(again) and listed < cap:
        listed = min(4 * listed, cap)
        again_counts, again_candidates, again_complete = _candidate_lists(
            tree, voxel_centres[again], k, listed, reach, n_centres
        )
        longer.update(zip(again.tolist(), np.split(again_candidates, np.cumsum(again_counts)[:-1])))
        counts[again], complete[again] = again_counts, again_complete
        again = again[~again_complete]
    if longer:
        pieces, end = [], 0
        for voxel in sorted(longer):
            pieces += [candidates[end : first_offsets[voxel]], longer[voxel]]
            end = first_offsets[voxel + 1]
        candidates = np.concatenate(pieces + [candidates[end:]])
    offsets = np.zeros(len(voxel_centres) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return CandidateGrid(box_min, 1.0 / cell, resolution, offsets, candidates, complete, int(counts.max()))


def _candidate_lists(
    tree: cKDTree, voxel_centres: np.ndarray, k: int, listed: int, reach: float, n_centres: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per voxel, the centres within (k-th nearest distance from its centre +
    reach), nearest first, among the ``listed`` nearest.

    Args:
        voxel_centres: (V, d) float64; reach: the voxel's diagonal.

    Returns:
        counts (V,) int64; candidates: (sum of counts,) int32, voxel-major;
        complete (V,) bool, False where ``listed`` cut a list short.
    """
    counts = np.empty(len(voxel_centres), np.int64)
    complete = np.empty(len(voxel_centres), bool)
    lists = []
    chunk = max(1, _GRID_BUILD_ENTRIES // listed)
    for start in range(0, len(voxel_centres), chunk):
        distance, index = tree_query(tree.query, voxel_centres[start : start + chunk], k=listed)
        distance, index = distance.reshape(len(distance), listed), index.reshape(len(index), listed)
        # A small margin keeps the bound safe against rounding.
        radius = (distance[:, k - 1] + reach) * (1.0 + 1e-9) + 1e-12
        within = distance <= radius[:, None]
        count = within.sum(1)
        counts[start : start + len(within)] = count
        complete[start : start + len(within)] = (count < listed) | (listed == n_centres)
        lists.append(index[within].astype(np.int32))
    return counts, np.concatenate(lists) if lists else np.zeros(0, np.int32), complete


class NeighbourIndex:
    """Spatial index over fixed centres.

    Args:
        centres: (N, d) float tensor of RBF centres.
        grid_after_points: points answered by the tree, per k, before a
            :class:`CandidateGrid` is built for that k (CPU with the fast paths
            on; 0 builds it at the first query).
    """

    def __init__(self, centres: torch.Tensor, grid_after_points: int = GRID_AFTER_POINTS):
        self.n_centres = centres.shape[0]
        self.device = centres.device
        self._centres = centres.detach()
        self._tree = None
        self._grid_after_points = grid_after_points
        self._tree_points: dict[int, int] = {}
        self._grids: dict[int, CandidateGrid] = {}
        if centres.device.type == "cpu":
            self._centres_np = centres.detach().double().numpy()
            self._tree = cKDTree(self._centres_np)

    def query(self, points: torch.Tensor, k: int) -> torch.Tensor:
        """Indices of the k nearest centres of each point.

        Args:
            points: (P, d) float tensor on the centres' device.
            k: neighbours wanted; clamped to the number of centres.

        Returns:
            (P, min(k, N)) int64 indices, nearest first.
        """
        k = min(k, self.n_centres)
        if points.shape[0] == 0:
            return torch.zeros(0, k, dtype=torch.int64, device=points.device)
        if self._tree is not None:
            return torch.from_numpy(self._query_cpu(points.detach().cpu().numpy(), k)).to(points.device)
        return nearest_by_distance(points.detach(), self._centres, k)

    def candidate_grid(self, k: int) -> CandidateGrid | None:
        """The candidate grid that answers k-nearest queries, once built."""
        return self._grids.get(min(k, self.n_centres))

    def _query_cpu(self, points: np.ndarray, k: int) -> np.ndarray:
        """(P, k) int64 via the candidate grid where it applies, else the tree."""
        grid, kernels = self._grids.get(k), numba_kernels()
        if grid is None and kernels is not None and self._tree_points.get(k, 0) >= self._grid_after_points:
            grid = self._grids[k] = build_candidate_grid(self._tree, self._centres_np, k)
        if grid is None or kernels is None:
            self._tree_points[k] = self._tree_points.get(k, 0) + len(points)
            return self._tree_query(points, k)
        points = np.ascontiguousarray(points)
        voxel = np.empty(len(points), np.int64)
        kernels.voxels_of_points(
            points, grid.box_min, grid.cells_per_unit, grid.resolution, grid.complete, voxel, point_chunks(len(points))
        )
        order = np.empty(len(points), np.int64)
        n_ordered = kernels.order_by_voxel(voxel, len(grid.complete), order)
        index = np.empty((len(points), k), np.int64)
        kernels.nearest_in_voxel_order(
            points,
            self._centres_np,
            order,
            n_ordered,
            voxel,
            grid.offsets,
            grid.candidates,
            grid.longest,
            index,
            point_chunks(n_ordered),
        )
        if n_ordered < len(points):
            missing = voxel < 0
            index[missing] = self._tree_query(points[missing], k)
        return index

    def _tree_query(self, points: np.ndarray, k: int) -> np.ndarray:
        # Worker threads are started per call; for a few points that costs more than it saves.
        workers = cpu_workers() if len(points) >= _TREE_THREADS_FROM else 1
        _, index = tree_query(self._tree.query, points.astype(np.float64), k=k, workers=workers)
        return np.asarray(index, dtype=np.int64).reshape(len(points), k)


def nearest_by_distance(
    points: torch.Tensor, centres: torch.Tensor, k: int, chunk: int = _BRUTE_FORCE_CHUNK
) -> torch.Tensor:
    """The search of devices other than the CPU: (P, k) int64 indices of the k <= N nearest of the (N, d)
    centres to each of the (P, d) points, nearest first, from distance matrices of ``chunk`` points at a
    time and top-k, on the tensors' device."""
    parts = [
        torch.cdist(points[start : start + chunk], centres).topk(k, dim=1, largest=False).indices
        for start in range(0, points.shape[0], chunk)
    ]
    return torch.cat(parts)


def brute_force_neighbours(points: torch.Tensor, centres: torch.Tensor, k: int) -> torch.Tensor:
    """Reference k-NN by full distance matrix: (P, min(k, N)) int64, nearest first."""
    k = min(k, centres.shape[0])
    distances = ((points[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
    return distances.topk(k, dim=1, largest=False).indices
