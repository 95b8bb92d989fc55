"""Meshes from a radiance field's density, with vertex colours.

The density is sampled on a lattice of ``resolution**3`` points over the scene
box, one z-slab at a time (memory: the float32 volume plus one slab of points),
and the ``level`` iso-surface is extracted by marching cubes (scikit-image).
Each vertex is coloured by the field's colour there, seen from outside along
the surface normal. Written as binary PLY (with colours) or OBJ (``v x y z r g b``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from rbfield.errors import RbfieldError
from rbfield.io import atomic_write_bytes

#: Iso-level of the exported surface, density in 1 / scene unit.
DEFAULT_LEVEL = 10.0
MAX_RESOLUTION = 768


@torch.no_grad()
def density_volume(field, resolution: int, chunk: int = 2**16) -> np.ndarray:
    """(R, R, R) float32 density at lattice points ``box_min + i / (R-1) * size`` (axis order x, y, z)."""
    axis = torch.linspace(0.0, 1.0, resolution)
    size = field.box_max - field.box_min
    volume = np.empty((resolution, resolution, resolution), dtype=np.float32)
    for i in range(resolution):
        y, z = torch.meshgrid(axis, axis, indexing="ij")
        unit = torch.stack([torch.full_like(y, float(axis[i])), y, z], -1).reshape(-1, 3)
        points = field.box_min + unit * size
        values = torch.cat([field.density(points[j : j + chunk]) for j in range(0, points.shape[0], chunk)])
        volume[i] = values.reshape(resolution, resolution).numpy()
    return volume


@torch.no_grad()
def extract_mesh(field, resolution: int = 256, level: float = DEFAULT_LEVEL) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Marching cubes on the density.

    Returns:
        vertices (V, 3) float32 in scene units, faces (F, 3) int64, colours (V, 3) uint8.

    Raises:
        RbfieldError: resolution out of range, or no surface at this level.
    """
    from skimage.measure import marching_cubes

    if not 16 <= resolution <= MAX_RESOLUTION:
        raise RbfieldError(f"mesh resolution must be between 16 and {MAX_RESOLUTION}, got {resolution}")
    volume = density_volume(field, resolution)
    if not volume.min() < level < volume.max():
        raise RbfieldError(f"the density never crosses {level} (range {volume.min():.3g}..{volume.max():.3g}); "
                           "the field is empty or the level is wrong")
    spacing = ((field.box_max - field.box_min) / (resolution - 1)).tolist()
    vertices, faces, normals, _ = marching_cubes(volume, level=level, spacing=tuple(spacing))
    vertices = vertices + field.box_min.numpy()
    outward = torch.from_numpy(np.ascontiguousarray(normals, dtype=np.float32))
    outward = outward / outward.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    points = torch.from_numpy(np.ascontiguousarray(vertices, dtype=np.float32))
    colours = torch.cat([field(points[i : i + 2**16], -outward[i : i + 2**16])[1] for i in range(0, points.shape[0], 2**16)])
    colours = (colours.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return vertices.astype(np.float32), faces.astype(np.int64), colours


def mesh_bytes(path: Path, vertices: np.ndarray, faces: np.ndarray, colours: np.ndarray) -> bytes:
    """Encode a coloured triangle mesh as binary PLY or OBJ, by the file extension."""
    suffix = path.suffix.lower()
    if suffix == ".obj":
        lines = [f"v {x:.6f} {y:.6f} {z:.6f} {r / 255:.4f} {g / 255:.4f} {b / 255:.4f}" for (x, y, z), (r, g, b) in zip(vertices, colours)]
        lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces]
        return ("\n".join(lines) + "\n").encode()
    if suffix != ".ply":
        raise RbfieldError(f"{path}: unsupported mesh format {suffix!r}; use .ply or .obj")
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {len(vertices)}\nproperty float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\n"
        f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n"
    ).encode()
    vertex_type = np.dtype([("p", "<f4", 3), ("c", "u1", 3)])
    vertex_rows = np.empty(len(vertices), dtype=vertex_type)
    vertex_rows["p"], vertex_rows["c"] = vertices, colours
    face_type = np.dtype([("n", "u1"), ("i", "<i4", 3)])
    face_rows = np.empty(len(faces), dtype=face_type)
    face_rows["n"], face_rows["i"] = 3, faces
    return header + vertex_rows.tobytes() + face_rows.tobytes()


def save_mesh(path: str | os.PathLike, vertices: np.ndarray, faces: np.ndarray, colours: np.ndarray) -> None:
    """Write a coloured mesh (.ply or .obj) atomically."""
    path = Path(path)
    atomic_write_bytes(path, mesh_bytes(path, vertices, faces, colours))
