"""Which parts of a density volume light from outside the box can reach.

A radiance field is only constrained where the training cameras saw it: in
front of the visible surface it must be empty, behind it (the inside of an
object) it is never observed and its density is arbitrary. Marching cubes on
the raw density then also meshes the low-density pockets inside, which sit far
from the true surface.

This module estimates, for every lattice point of a density volume, the
largest transmittance ``max_d exp(-integral sigma ds)`` over straight lines
arriving from outside the box along a set of directions ``d``: the axes of a
Fibonacci lattice on the upper hemisphere, each travelled both ways, so the
directions cover the whole sphere and no capture layout is assumed. A point no
line reaches with transmittance above 1/2 -- the opacity at which a render
counts a pixel as foreground -- is hidden, i.e. inside an object.

For one axis the volume is resampled (trilinear) on a lattice aligned with it
that covers the box's circumscribed cube; the optical depth from either end is
a cumulative sum along the axis (one pass serves both directions), sampled
back at the original lattice points.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

#: Axes of the straight lines tested per point (each travelled both ways).
DEFAULT_AXES = 8


def hemisphere_axes(count: int) -> torch.Tensor:
    """(count, 3) unit vectors spread evenly over the upper hemisphere (Fibonacci lattice); with
    their opposites they cover the sphere evenly."""
    index = torch.arange(count, dtype=torch.float64) + 0.5
    z = index / count
    radius = torch.sqrt(1.0 - z * z)
    angle = math.pi * (1.0 + math.sqrt(5.0)) * index
    return torch.stack([radius * torch.cos(angle), radius * torch.sin(angle), z], -1).float()


def _frame(direction: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Two unit vectors (3,) that make a right-handed orthonormal frame with the unit ``direction``."""
    helper = torch.tensor([1.0, 0.0, 0.0]) if abs(float(direction[0])) < 0.9 else torch.tensor([0.0, 1.0, 0.0])
    u = torch.linalg.cross(direction, helper)
    u = u / u.norm()
    return u, torch.linalg.cross(direction, u)


def lattice_slab(index: int, resolution: int) -> torch.Tensor:
    """(R, R, 3) lattice points of x-slab ``index`` in unit coordinates ``i / (R - 1)`` (axis order x, y, z)."""
    axis = torch.linspace(0.0, 1.0, resolution)
    y, z = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([torch.full_like(y, float(axis[index])), y, z], -1)


def trilinear(volume: torch.Tensor, points: torch.Tensor, padding: str = "border") -> torch.Tensor:
    """Values of a (1, C, X, Y, Z) lattice volume at points (..., 3) in [-1, 1]^3 (x, y, z order) -> (C, ...)."""
    grid = points.flip(-1).reshape(1, 1, 1, -1, 3)  # grid_sample wants (z, y, x) for a (D, H, W) = (X, Y, Z) volume
    values = F.grid_sample(volume, grid, align_corners=True, padding_mode=padding)[0, :, 0, 0]
    return values.reshape(volume.shape[1:2] + points.shape[:-1])


@torch.no_grad()
def optical_depths(
    density: np.ndarray, axis: torch.Tensor, box_min: torch.Tensor, box_max: torch.Tensor
) -> torch.Tensor:
    """Optical depth from outside the box to every lattice point, along ``axis`` and against it.

    Args:
        density: (R, R, R) float32 density (1 / scene unit) at the lattice points
            ``box_min + i / (R - 1) * (box_max - box_min)`` (axis order x, y, z).
        axis: (3,) unit vector.
        box_min, box_max: (3,) box corners (scene units).

    Returns:
        (2, R, R, R) dimensionless optical depths of light travelling along
        ``+axis`` and along ``-axis``; transmittance is ``exp(-depth)``.
    """
    resolution = density.shape[0]
    size = box_max - box_min
    centre = 0.5 * (box_min + box_max)
    half = 0.5 * float(size.norm())  # the aligned lattice spans the circumscribed sphere's cube
    count = int(math.ceil(2.0 * half * (resolution - 1) / float(size.min()))) + 1
    steps = torch.linspace(-half, half, count)
    u, w = _frame(axis)
    volume = torch.from_numpy(density)[None, None]
    depths = torch.empty(1, 2, count, count, count)
    along = steps[None, :, None] * axis  # (1, count, 3)
    for a in range(count):  # one slab of the aligned lattice at a time: (b, c) = (across, along the axis)
        points = centre + steps[a] * u + steps[:, None, None] * w + along
        values = trilinear(volume, (points - box_min) / size * 2.0 - 1.0, "zeros")[0] * (2.0 * half / (count - 1))
        forward = torch.cumsum(values, -1)
        depths[0, 0, a] = forward
        depths[0, 1, a] = forward[:, -1:] - forward + values  # the same line summed from its other end
    result = torch.empty(2, resolution, resolution, resolution)
    frame = torch.stack([u, w, axis], -1)  # (3, 3): world offset -> aligned coordinates
    for i in range(resolution):
        aligned = ((box_min + lattice_slab(i, resolution) * size - centre) @ frame) / half
        result[:, i] = trilinear(depths, aligned)
    return result


def outside_transmittance(
    density: np.ndarray, box_min: torch.Tensor, box_max: torch.Tensor, axes: int = DEFAULT_AXES
) -> np.ndarray:
    """(R, R, R) float32: the largest transmittance from outside the box over ``2 * axes`` straight lines.

    ``density`` is as in :func:`optical_depths`. Values are in (0, 1]; below
    1/2 a point is hidden from every tested direction.
    """
    best = torch.zeros(density.shape)
    for axis in hemisphere_axes(axes):
        best = torch.maximum(best, torch.exp(-optical_depths(density, axis, box_min, box_max).amin(0)))
    return best.numpy()
