"""k-nearest-centre search for adaptive RBFs.

On the CPU a SciPy k-d tree answers queries (multi-threaded); on other devices a
chunked brute-force distance + top-k runs on the device itself, so the same
field code works on CUDA and MPS.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree

from rbfield.ops import cpu_workers

_BRUTE_FORCE_CHUNK = 8192


class NeighbourIndex:
    """Spatial index over fixed centres.

    Args:
        centres: (N, d) float tensor of RBF centres.
    """

    def __init__(self, centres: torch.Tensor):
        self.n_centres = centres.shape[0]
        self.device = centres.device
        self._centres = centres.detach()
        self._tree = None
        if centres.device.type == "cpu":
            self._tree = cKDTree(centres.detach().double().numpy())

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
            _, index = self._tree.query(points.detach().double().cpu().numpy(), k=k, workers=cpu_workers())
            index = np.asarray(index, dtype=np.int64).reshape(points.shape[0], k)
            return torch.from_numpy(index).to(points.device)
        chunks = []
        for start in range(0, points.shape[0], _BRUTE_FORCE_CHUNK):
            distances = torch.cdist(points[start : start + _BRUTE_FORCE_CHUNK].detach(), self._centres)
            chunks.append(distances.topk(k, dim=1, largest=False).indices)
        return torch.cat(chunks)


def brute_force_neighbours(points: torch.Tensor, centres: torch.Tensor, k: int) -> torch.Tensor:
    """Reference k-NN by full distance matrix: (P, min(k, N)) int64, nearest first."""
    k = min(k, centres.shape[0])
    distances = ((points[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
    return distances.topk(k, dim=1, largest=False).indices
