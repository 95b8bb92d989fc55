"""Sparse, chunked marching cubes of a signed distance function on [0, 1]^3.

The grid has ``resolution`` samples per axis at ``i / (resolution - 1)``.
Cells are grouped into blocks of ``block`` cells per axis. A block is
*active* when ``|sdf(centre)| <= margin * half-diagonal``, i.e. when the
surface may pass through it if the field is a distance function whose
gradient norm is at most ``margin``. Activity is decided coarse to fine:
blocks of ``block * 2**j`` cells are tested first and only the children of
active ones are tested next, so the far field is hardly sampled. Only active
blocks are sampled at full resolution, a few at a time (at most ``chunk``
points per field call), and each is triangulated with scikit-image's marching
cubes; vertices shared by neighbouring blocks are
merged. Memory is the coarse grid, one chunk and the output mesh, so 512^3
and 1024^3 fit in a few GB.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from rbfield.errors import RbfieldError
from rbfield.memory import available_memory

#: Conservative output estimate: surface area (unit-cube units) of a normalized shape.
_AREA_BOUND = 6.0
#: Bytes per output triangle, temporaries included (faces, vertices, merging).
_BYTES_PER_TRIANGLE = 120


def estimated_bytes(resolution: int, block: int = 8, chunk: int = 2**17) -> int:
    """Upper estimate of peak memory (bytes) of :func:`extract_mesh` beyond the field."""
    cells = resolution - 1
    blocks = math.ceil(cells / block) ** 3
    triangles = 2 * _AREA_BOUND * cells**2
    return int(blocks * 16 + chunk * 64 + triangles * _BYTES_PER_TRIANGLE)


def check_resolution(resolution: int, block: int = 8, chunk: int = 2**17) -> None:
    """Refuse resolutions below 8 or whose estimated memory exceeds what is available."""
    if resolution < 8:
        raise RbfieldError(f"marching-cubes resolution {resolution} is too small; use at least 8 (e.g. 256 or 512)")
    need, have = estimated_bytes(resolution, block, chunk), available_memory()
    if need > have:
        raise RbfieldError(
            f"marching cubes at {resolution}^3 may need about {need / 2**30:.1f} GB but only "
            f"{have / 2**30:.1f} GB is available; use a smaller --res"
        )


@torch.no_grad()
def _evaluate(
    sdf: Callable[[torch.Tensor], torch.Tensor], points: np.ndarray, chunk: int, device: torch.device
) -> np.ndarray:
    """sdf at (P, 3) points, ``chunk`` at a time, each chunk sent to ``device`` -> (P,) float32 on the CPU."""
    out = np.empty(len(points), dtype=np.float32)
    for start in range(0, len(points), chunk):
        batch = torch.from_numpy(points[start : start + chunk].astype(np.float32)).to(device)
        out[start : start + chunk] = sdf(batch).reshape(-1).float().cpu().numpy()
    return out


def extract_mesh(
    sdf: Callable[[torch.Tensor], torch.Tensor],
    resolution: int,
    block: int = 8,
    chunk: int = 2**17,
    margin: float = 1.5,
    device: str | torch.device = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Triangulate the zero level set of ``sdf`` on a resolution^3 grid over [0, 1]^3.

    Args:
        sdf: maps (P, 3) float32 points to (P,) or (P, 1) signed distances
            (negative inside).
        resolution: samples per axis (cells = resolution - 1).
        block: cells per block axis.
        chunk: points per ``sdf`` call.
        margin: assumed bound on the gradient norm, for skipping blocks.
        device: where ``sdf`` gets its points (a field's device); the grid and the mesh stay on the CPU.

    Returns:
        vertices (V, 3) float64 in [0, 1]^3 and faces (F, 3) int64, oriented
        with normals pointing towards positive sdf (outwards). Empty arrays if
        the level set is not crossed.

    Raises:
        RbfieldError: the resolution would not fit in memory (see :func:`check_resolution`).
    """
    from skimage.measure import marching_cubes

    check_resolution(resolution, block, chunk)
    cells = resolution - 1
    h = 1.0 / cells
    device = torch.device(device)
    block_index = _active_blocks(sdf, cells, block, chunk, margin, device)
    starts = np.arange(math.ceil(cells / block)) * block
    sizes = np.minimum(block, cells - starts)

    vertices, faces, n_vertices = [], [], 0
    per_call = max(1, chunk // (block + 1) ** 3)
    for group_start in range(0, len(block_index), per_call):
        group = block_index[group_start : group_start + per_call]
        axes_list, points = [], []
        for b in group:
            axes = [np.arange(starts[b[a]], starts[b[a]] + sizes[b[a]] + 1) for a in range(3)]
            mesh = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
            axes_list.append(axes)
            points.append(mesh * h)
        values = _evaluate(sdf, np.concatenate(points), chunk, device)
        offset = 0
        for axes in axes_list:
            shape = tuple(len(a) for a in axes)
            volume = values[offset : offset + math.prod(shape)].reshape(shape)
            offset += math.prod(shape)
            if not (volume.min() < 0.0 < volume.max()):
                continue
            local_vertices, local_faces, _, _ = marching_cubes(volume, 0.0, gradient_direction="descent")
            corner = np.array([a[0] for a in axes], dtype=np.float64)
            vertices.append((local_vertices + corner) * h)
            faces.append(local_faces.astype(np.int64) + n_vertices)
            n_vertices += len(local_vertices)
    if not vertices:
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
    return _merge(np.concatenate(vertices), np.concatenate(faces), h)


def _active_blocks(sdf, cells: int, block: int, chunk: int, margin: float, device: torch.device) -> np.ndarray:
    """(K, 3) indices of the blocks of ``block`` cells that the surface may cross.

    Coarse to fine: blocks of block * 2**j cells are tested at their centres,
    and only the children of active blocks are tested at the next level.
    """
    h = 1.0 / cells
    size = block
    while size * 8 < cells:
        size *= 2
    n = math.ceil(cells / size)
    candidates = np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), -1).reshape(-1, 3)
    while True:
        start = candidates * size
        centre = (start + np.minimum(size, cells - start) / 2.0) * h
        values = _evaluate(sdf, centre, chunk, device)
        candidates = candidates[np.abs(values) <= margin * math.sqrt(3.0) / 2.0 * size * h]
        if size == block:
            return candidates
        size //= 2
        children = (candidates[:, None, :] * 2 + _CHILD_OFFSETS[None]).reshape(-1, 3)
        candidates = children[(children * size < cells).all(1)]


_CHILD_OFFSETS = np.stack(np.meshgrid(*[np.arange(2)] * 3, indexing="ij"), -1).reshape(8, 3)


def _merge(vertices: np.ndarray, faces: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray]:
    """Weld vertices that coincide (to h / 4096) and drop faces that collapse."""
    keys = np.round(vertices / h * 4096.0).astype(np.int64)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    faces = inverse.reshape(-1)[faces]
    keep = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
    return vertices[first], faces[keep]
