"""Camera rays and the axis-aligned scene box.

Cameras follow the OpenGL convention of the Blender format: in camera space
the camera looks down -Z with +Y up and +X right. Pixel (row i, column j) has
its centre at image coordinates ``(u, v) = (j + 0.5, i + 0.5)``; its ray
direction in camera space is ``((u - cx) / fx, -(v - cy) / fy, -1)``, rotated
to world space by the camera-to-world matrix. Directions are unit length, so a
ray parameter t is a distance in scene units.
"""

from __future__ import annotations

import torch


def camera_rays(
    poses: torch.Tensor, intrinsics: torch.Tensor, u: torch.Tensor, v: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """World-space rays through image points.

    Args:
        poses: (R, 4, 4) camera-to-world matrices (one per ray).
        intrinsics: (R, 4) ``fx, fy, cx, cy`` in pixels.
        u, v: (R,) image coordinates in pixels (column, row; pixel centres at +0.5).

    Returns:
        origins (R, 3) and unit directions (R, 3), world space.
    """
    fx, fy, cx, cy = intrinsics.unbind(-1)
    camera = torch.stack([(u - cx) / fx, -(v - cy) / fy, -torch.ones_like(u)], dim=-1)
    directions = torch.einsum("rij,rj->ri", poses[:, :3, :3], camera)
    return poses[:, :3, 3].clone(), directions / directions.norm(dim=-1, keepdim=True)


def image_rays(
    pose: torch.Tensor, intrinsics: torch.Tensor, width: int, height: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rays through every pixel centre of one view, row-major: (H*W, 3) origins and directions."""
    rows, columns = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    u = columns.reshape(-1).float() + 0.5
    v = rows.reshape(-1).float() + 0.5
    count = u.shape[0]
    return camera_rays(pose.expand(count, 4, 4), intrinsics.expand(count, 4), u, v)


def ray_box(
    origins: torch.Tensor, directions: torch.Tensor, box_min: torch.Tensor, box_max: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Slab intersection of rays with an axis-aligned box.

    Args:
        origins, directions: (R, 3).
        box_min, box_max: (3,) corners.

    Returns:
        near, far: (R,) distances; ``near`` is clamped to >= 0 and a ray
        misses the box when ``far <= near``.
    """
    safe = torch.where(directions.abs() < 1e-12, torch.full_like(directions, 1e-12), directions)
    t0 = (box_min - origins) / safe
    t1 = (box_max - origins) / safe
    near = torch.minimum(t0, t1).amax(-1).clamp_min(0.0)
    far = torch.maximum(t0, t1).amin(-1)
    return near, far


def look_at(eye: torch.Tensor, target: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """(4, 4) OpenGL camera-to-world matrix of a camera at ``eye`` looking at ``target``."""
    back = eye - target
    back = back / back.norm()
    right = torch.linalg.cross(up, back)
    right = right / right.norm()
    true_up = torch.linalg.cross(back, right)
    pose = torch.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, true_up, back, eye
    return pose


def orbit_poses(count: int, radius: float, elevation_degrees: float) -> torch.Tensor:
    """(count, 4, 4) cameras on a circle around the origin (+Z up), looking at it."""
    elevation = torch.deg2rad(torch.tensor(elevation_degrees))
    poses = []
    for angle in torch.linspace(0.0, 2.0 * torch.pi, count + 1)[:-1]:
        eye = radius * torch.stack(
            [torch.cos(elevation) * torch.cos(angle), torch.cos(elevation) * torch.sin(angle), torch.sin(elevation)]
        )
        poses.append(look_at(eye, torch.zeros(3), torch.tensor([0.0, 0.0, 1.0])))
    return torch.stack(poses)
