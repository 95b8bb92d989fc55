"""Ray marching and volume rendering as small pure functions (nerfacc style).

Samples are *packed*: all samples of all rays in one flat list, sorted by ray
and then by distance, with ``ray_index`` (S,) naming each sample's ray and
``t_start, t_end`` (S,) its interval along the ray (scene units).

Volume rendering (Max 1995, as in NeRF): with ``tau_i = sigma_i (t_end - t_start)``,
``alpha_i = 1 - exp(-tau_i)``, transmittance ``T_i = exp(-sum_{j<i} tau_j)`` and
weight ``w_i = T_i alpha_i``. Colour ``C = sum w_i c_i``, depth ``D = sum w_i t_i``
(t at the interval midpoint), opacity ``A = sum w_i = 1 - T_end``. On a
background colour b the pixel is ``C + (1 - A) b``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from rbfield.ops import numba_kernels
from rbfield.scenes.occupancy import OccupancyGrid
from rbfield.scenes.rays import image_rays, ray_box


def _steps_per_ray(near: torch.Tensor, far: torch.Tensor, step_size: float) -> int:
    """Steps that cover the longest (far - near) span; 0 for no rays."""
    return int(torch.ceil((far - near).clamp_min(0.0).max() / step_size).item()) if near.numel() else 0


def _no_samples(origins: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    empty = origins.new_zeros(0)
    return empty.long(), empty, empty


def march(
    origins: torch.Tensor,
    directions: torch.Tensor,
    near: torch.Tensor,
    far: torch.Tensor,
    step_size: float,
    occupied: Callable[[torch.Tensor], torch.Tensor],
    jitter: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Uniform steps along each ray between near and far, kept where occupied.

    Args:
        origins, directions: (R, 3), unit directions.
        near, far: (R,) distances (a ray with far <= near gets no samples).
        step_size: distance between samples (scene units).
        occupied: (P, 3) points -> (P,) bool, e.g. :meth:`OccupancyGrid.query`.
        jitter: (R,) offsets in [0, 1) of the first step (stratified training);
            None for 0.5 (interval midpoints on a fixed lattice).

    Returns:
        ray_index (S,) int64, t_start (S,), t_end (S,), packed.
    """
    n_rays = origins.shape[0]
    n_steps = _steps_per_ray(near, far, step_size)
    if n_steps == 0:
        return _no_samples(origins)
    offset = jitter if jitter is not None else torch.full_like(near, 0.5)
    steps = torch.arange(n_steps, dtype=origins.dtype, device=origins.device)
    t_mid = near[:, None] + (steps[None, :] + offset[:, None]) * step_size  # (R, n)
    keep = t_mid < far[:, None]
    points = origins[:, None, :] + directions[:, None, :] * t_mid[..., None]
    keep &= occupied(points.reshape(-1, 3)).reshape(n_rays, n_steps)
    ray_index = torch.arange(n_rays, device=origins.device)[:, None].expand(n_rays, n_steps)[keep]
    t = t_mid[keep]
    return ray_index, t - 0.5 * step_size, t + 0.5 * step_size


def march_occupancy(
    origins: torch.Tensor,
    directions: torch.Tensor,
    near: torch.Tensor,
    far: torch.Tensor,
    step_size: float,
    grid: OccupancyGrid,
    jitter: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`march` with ``grid.query`` as the occupancy test, same arguments and
    result. On the CPU two fused Numba passes over the rays (count, then fill)
    replace the (R, steps, 3) point tensor and its lookups; the samples are
    bit-identical, as the kernels repeat PyTorch's float32 operations in order.
    """
    tensors = (origins, directions, near, far) + (() if jitter is None else (jitter,))
    on_cpu = all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors) and grid.occupied.is_cpu
    kernels = numba_kernels() if on_cpu else None
    if kernels is None:
        return march(origins, directions, near, far, step_size, grid.query, jitter)
    n_rays = origins.shape[0]
    n_steps = _steps_per_ray(near, far, step_size)
    if n_steps == 0:
        return _no_samples(origins)
    offset = jitter if jitter is not None else torch.full_like(near, 0.5)
    arrays = [t.detach().contiguous().numpy() for t in (origins, directions, near, far, offset)]
    grid_arrays = (grid.box_min.numpy(), grid.box_max.numpy(), grid.resolution, grid.occupied.numpy())
    step = np.float32(step_size)
    counts = np.empty(n_rays, np.int64)
    kernels.march_counts(*arrays, step, n_steps, *grid_arrays, counts)
    starts = np.cumsum(counts) - counts
    ray_index = np.empty(int(counts.sum()), np.int64)
    t_mid = np.empty(len(ray_index), np.float32)
    kernels.march_fill(*arrays, step, n_steps, *grid_arrays, starts, ray_index, t_mid)
    t = torch.from_numpy(t_mid)
    return torch.from_numpy(ray_index), t - 0.5 * step_size, t + 0.5 * step_size


def exclusive_segment_sum(values: torch.Tensor, ray_index: torch.Tensor, n_rays: int) -> torch.Tensor:
    """Per-ray exclusive cumulative sum of packed values (S,) -> (S,), differentiable.

    Summed in float64, so rays late in a long packed list keep full precision.
    """
    exclusive = torch.cumsum(values.double(), 0) - values.double()
    counts = torch.bincount(ray_index, minlength=n_rays)
    starts = torch.cumsum(counts, 0) - counts
    return (exclusive - exclusive[starts[ray_index]]).float()


def render_weights(
    sigmas: torch.Tensor, t_start: torch.Tensor, t_end: torch.Tensor, ray_index: torch.Tensor, n_rays: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Weights, transmittance and alpha of packed samples.

    Args:
        sigmas: (S,) densities >= 0 (1 / scene unit).
        t_start, t_end: (S,) intervals.
        ray_index: (S,) sorted ray of each sample.
        n_rays: R.

    Returns:
        weights (S,), transmittance before each sample (S,), alphas (S,).
    """
    tau = sigmas * (t_end - t_start)
    transmittance = torch.exp(-exclusive_segment_sum(tau, ray_index, n_rays))
    alphas = 1.0 - torch.exp(-tau)
    return transmittance * alphas, transmittance, alphas


def accumulate(
    weights: torch.Tensor, values: torch.Tensor | None, ray_index: torch.Tensor, n_rays: int
) -> torch.Tensor:
    """Per-ray weighted sums: (S,) weights and (S, C) values -> (R, C); values None -> (R, 1) sum of weights."""
    summand = weights[:, None] if values is None else weights[:, None] * values
    out = summand.new_zeros(n_rays, summand.shape[1])
    return out.index_add(0, ray_index, summand)


def composite(colour: torch.Tensor, opacity: torch.Tensor, background: torch.Tensor | float) -> torch.Tensor:
    """(R, 3) accumulated colour + (1 - (R, 1) opacity) * background (3,) or scalar."""
    return colour + (1.0 - opacity) * background


def render_rays(
    field,
    origins: torch.Tensor,
    directions: torch.Tensor,
    step_size: float,
    jitter: torch.Tensor | None = None,
    background: float = 1.0,
    stop_transmittance: float = 1e-4,
    min_weight: float = 1e-4,
) -> dict:
    """Render rays through a radiance field with empty-space skipping and early termination.

    Samples are marched through the field's occupancy grid; a no-grad density
    pass then drops every sample behind which the transmittance has fallen
    below ``stop_transmittance`` (early ray termination). The survivors get
    their density again with gradients, and colour only where their weight
    exceeds ``min_weight`` (colour elsewhere counts as 0; its share of the
    pixel is below ``min_weight`` per sample).

    Args:
        field: a radiance field (``box_min``, ``box_max``, ``occupancy``,
            ``density(x) -> sigma``, ``colour(x, d) -> rgb``).
        origins, directions: (R, 3) rays, unit directions.
        step_size: marching step (scene units).
        jitter: (R,) first-step offsets in [0, 1) for training, None for midpoints.
        background: background grey level in [0, 1] (1 = white).
        stop_transmittance: early-termination threshold.

    Returns:
        {"rgb": (R, 3) composited, "depth": (R,) expected distance along the
        ray (scene units; 0 where empty), "opacity": (R,), "samples": int}.
    """
    n_rays = origins.shape[0]
    near, far = ray_box(origins, directions, field.box_min, field.box_max)
    ray_index, t_start, t_end = march_occupancy(origins, directions, near, far, step_size, field.occupancy, jitter)
    with torch.no_grad():
        points = origins[ray_index] + directions[ray_index] * (0.5 * (t_start + t_end))[:, None]
        weights, transmittance, _ = render_weights(field.density(points), t_start, t_end, ray_index, n_rays)
        alive = transmittance > stop_transmittance
        shade = (weights > min_weight)[alive]
    ray_index, t_start, t_end = ray_index[alive], t_start[alive], t_end[alive]
    t_mid = 0.5 * (t_start + t_end)
    points = origins[ray_index] + directions[ray_index] * t_mid[:, None]
    sigmas = field.density(points)
    shaded = shade.nonzero()[:, 0]
    colours = points.new_zeros(points.shape[0], 3).index_put(
        (shaded,), field.colour(points[shaded], directions[ray_index[shaded]])
    )
    weights, _, _ = render_weights(sigmas, t_start, t_end, ray_index, n_rays)
    colour = accumulate(weights, colours, ray_index, n_rays)
    opacity = accumulate(weights, None, ray_index, n_rays)
    depth = accumulate(weights, t_mid[:, None], ray_index, n_rays)[:, 0]
    return {
        "rgb": composite(colour, opacity, background),
        "depth": depth,
        "opacity": opacity[:, 0],
        "samples": int(ray_index.numel()),
    }


@torch.no_grad()
def render_view(
    field,
    pose: torch.Tensor,
    intrinsics: torch.Tensor,
    width: int,
    height: int,
    step_size: float,
    background: float = 1.0,
    chunk: int = 4096,
) -> dict:
    """Render one camera in chunks of rays on the field's device: {"rgb": (H, W, 3), "depth": (H, W),
    "opacity": (H, W)}, on the CPU."""
    device = next((p.device for p in field.parameters()), torch.device("cpu"))
    origins, directions = (rays.to(device) for rays in image_rays(pose, intrinsics, width, height))
    parts = [
        {
            name: value.cpu() if isinstance(value, torch.Tensor) else value
            for name, value in render_rays(
                field, origins[i : i + chunk], directions[i : i + chunk], step_size, background=background
            ).items()
        }
        for i in range(0, origins.shape[0], chunk)
    ]
    return {
        "rgb": torch.cat([p["rgb"] for p in parts]).reshape(height, width, 3).clamp(0, 1),
        "depth": torch.cat([p["depth"] for p in parts]).reshape(height, width),
        "opacity": torch.cat([p["opacity"] for p in parts]).reshape(height, width),
    }
