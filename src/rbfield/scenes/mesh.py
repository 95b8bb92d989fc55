"""Meshes from a radiance field's density, with vertex colours.

The density is sampled on a lattice of ``resolution**3`` points over the scene
box, one x-slab at a time (memory: the float32 volume plus one slab of points).
The surface is the boundary of the solid made of

* every point whose density exceeds ``level``, and
* every point hidden from outside the box (:mod:`rbfield.scenes.visibility`:
  no straight line from outside reaches it with transmittance above 1/2).

The second part fills the inside of objects, which no camera saw and where the
trained density is arbitrary: without it the raw iso-surface also wraps the
low-density pockets inside (on the bench scenes a quarter of the mesh's area
lay inside the object, more than 0.05 from the scan; bench/results/nerf.md).
Both parts go into one function, ``max(sigma / level, (1 - T) / (1 - 1/2))``,
whose level-1 set marching cubes (scikit-image) extracts. Visibility is
estimated on a lattice of at most :data:`VISIBILITY_RESOLUTION` points per axis
and interpolated trilinearly. Pieces of the mesh with less than
:data:`MIN_PIECE_SHARE` of the largest piece's area (floaters) are dropped.

Each vertex is coloured by the field's colour there, seen from outside along
the surface normal. Written as binary PLY (with colours) or OBJ (``v x y z r g b``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from rbfield.errors import RbfieldError
from rbfield.geometry.mesh_pieces import MIN_PIECE_SHARE, drop_small_pieces
from rbfield.io import atomic_write_bytes
from rbfield.scenes.mesh_defaults import DEFAULT_LEVEL
from rbfield.scenes.visibility import lattice_slab, outside_transmittance, trilinear

MAX_RESOLUTION = 768
#: Transmittance from outside below which a point counts as inside an object.
HIDDEN_TRANSMITTANCE = 0.5
#: Lattice points per axis (at most) of the visibility estimate.
VISIBILITY_RESOLUTION = 128


@torch.no_grad()
def density_volume(field, resolution: int, chunk: int = 2**16) -> np.ndarray:
    """(R, R, R) float32 density at lattice points ``box_min + i / (R-1) * size`` (axis order x, y, z),
    sampled on the field's device one x-slab at a time; the volume is on the CPU."""
    size = field.box_max - field.box_min
    volume = np.empty((resolution, resolution, resolution), dtype=np.float32)
    for i in range(resolution):
        points = field.box_min + lattice_slab(i, resolution).to(size.device).reshape(-1, 3) * size
        values = torch.cat([field.density(points[j : j + chunk]) for j in range(0, points.shape[0], chunk)])
        volume[i] = values.reshape(resolution, resolution).cpu().numpy()
    return volume


def fill_hidden(field, volume: np.ndarray, level: float) -> np.ndarray:
    """Turn a density volume into ``max(sigma / level, (1 - T) / (1 - HIDDEN_TRANSMITTANCE))`` in place.

    Args:
        field: the radiance field the (R, R, R) ``volume`` was sampled from
            (:func:`density_volume`); resampled coarser for the visibility.
        level: density iso-level (1 / scene unit).

    Returns:
        ``volume``, now dimensionless: above 1 where the density exceeds
        ``level`` or the point is hidden from outside (T < 1/2).
    """
    resolution = volume.shape[0]
    coarse = volume if resolution <= VISIBILITY_RESOLUTION else density_volume(field, VISIBILITY_RESOLUTION)
    seen = torch.from_numpy(outside_transmittance(coarse, field.box_min.cpu(), field.box_max.cpu()))[None, None]
    for i in range(resolution):
        hidden = (1.0 - trilinear(seen, lattice_slab(i, resolution) * 2.0 - 1.0)[0]) / (1.0 - HIDDEN_TRANSMITTANCE)
        np.maximum(volume[i] / level, hidden.numpy(), out=volume[i])
    return volume


@torch.no_grad()
def extract_mesh(
    field,
    resolution: int = 256,
    level: float = DEFAULT_LEVEL,
    fill: bool = True,
    min_piece_share: float = MIN_PIECE_SHARE,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Marching cubes on the density, with the hidden inside filled and floaters dropped.

    Args:
        resolution: lattice points per axis.
        level: density iso-level (1 / scene unit).
        fill: fill points hidden from outside the box (see the module
            docstring); False gives the raw density iso-surface, e.g. for a
            scene whose cameras stand inside the box.
        min_piece_share: drop mesh pieces with less than this share of the
            largest piece's area (0 keeps every piece).

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
        raise RbfieldError(
            f"the density never crosses {level} (range {volume.min():.3g}..{volume.max():.3g}); "
            "the field is empty or the level is wrong"
        )
    volume = fill_hidden(field, volume, level) if fill else volume / level
    spacing = ((field.box_max - field.box_min) / (resolution - 1)).tolist()
    vertices, faces, normals, _ = marching_cubes(volume, level=1.0, spacing=tuple(spacing))
    kept, faces = drop_small_pieces(vertices, faces, min_piece_share)
    vertices, normals = vertices[kept] + field.box_min.cpu().numpy(), normals[kept]
    colours = _vertex_colours(field, vertices, normals)
    return vertices.astype(np.float32), faces.astype(np.int64), colours


@torch.no_grad()
def _vertex_colours(field, vertices: np.ndarray, normals: np.ndarray, chunk: int = 2**16) -> np.ndarray:
    """(V, 3) uint8 colours of the field at (V, 3) vertices (scene units), seen from outside along the
    (V, 3) outward normals; evaluated on the field's device ``chunk`` vertices at a time."""
    device = field.box_min.device
    outward = torch.from_numpy(np.ascontiguousarray(normals, dtype=np.float32)).to(device)
    outward = outward / outward.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    points = torch.from_numpy(np.ascontiguousarray(vertices, dtype=np.float32)).to(device)
    colours = torch.cat(
        [field(points[i : i + chunk], -outward[i : i + chunk])[1] for i in range(0, points.shape[0], chunk)]
    )
    return (colours.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


def mesh_bytes(path: Path, vertices: np.ndarray, faces: np.ndarray, colours: np.ndarray) -> bytes:
    """Encode a coloured triangle mesh as binary PLY, OBJ or GLB (trimesh; colours as the
    COLOR_0 vertex attribute), by the file extension."""
    suffix = path.suffix.lower()
    if suffix == ".glb":
        import trimesh

        return trimesh.Trimesh(vertices, faces, vertex_colors=colours, process=False).export(file_type="glb")
    if suffix == ".obj":
        lines = [
            f"v {x:.6f} {y:.6f} {z:.6f} {r / 255:.4f} {g / 255:.4f} {b / 255:.4f}"
            for (x, y, z), (r, g, b) in zip(vertices, colours)
        ]
        lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces]
        return ("\n".join(lines) + "\n").encode()
    if suffix != ".ply":
        raise RbfieldError(f"{path}: unsupported mesh format {suffix!r}; use .ply, .obj or .glb")
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
    """Write a coloured mesh (.ply, .obj or .glb) atomically."""
    path = Path(path)
    atomic_write_bytes(path, mesh_bytes(path, vertices, faces, colours))
