"""A PNG of a mesh from a few views, without OpenGL.

Each view is an orthographic z-buffered splat of dense surface samples,
shaded by their normals (Lambert, headlight). Cheap, dependency-free and
good enough to see what a fit looks like.
"""

from __future__ import annotations

import math

import numpy as np

from rbfield.geometry.shape_metrics import sample_surface

#: (azimuth, elevation) in degrees of the views, left to right.
VIEWS = ((30.0, 20.0), (120.0, 20.0), (210.0, 20.0), (300.0, 60.0))


def _rotation(azimuth: float, elevation: float) -> np.ndarray:
    """Rotation taking world to camera axes; the camera looks down -z, +y up (world +y up)."""
    a, e = math.radians(azimuth), math.radians(elevation)
    turn = np.array([[math.cos(a), 0, -math.sin(a)], [0, 1, 0], [math.sin(a), 0, math.cos(a)]])
    tilt = np.array([[1, 0, 0], [0, math.cos(e), -math.sin(e)], [0, math.sin(e), math.cos(e)]])
    return tilt @ turn


def render_views(vertices: np.ndarray, faces: np.ndarray, size: int = 256, samples: int = 400_000) -> np.ndarray:
    """Grey (size, size * len(VIEWS)) float image in [0, 1] of a mesh, one view per panel.

    Args:
        vertices: (V, 3) in any units; faces: (F, 3).
    """
    panels = []
    if len(faces) == 0:
        return np.ones((size, size * len(VIEWS)))
    points, normals = sample_surface(vertices, faces, samples, seed=0)
    centre = (points.max(0) + points.min(0)) / 2
    radius = np.linalg.norm(points - centre, axis=1).max()
    for azimuth, elevation in VIEWS:
        rotation = _rotation(azimuth, elevation)
        p = (points - centre) @ rotation.T / radius
        n = normals @ rotation.T
        shade = np.clip(n[:, 2], 0.0, 1.0) * 0.8 + 0.15
        column = np.clip(((p[:, 0] + 1) / 2 * (size - 1)).round().astype(int), 0, size - 1)
        row = np.clip(((1 - p[:, 1]) / 2 * (size - 1)).round().astype(int), 0, size - 1)
        order = np.argsort(p[:, 2])  # far to near: nearer samples overwrite
        panel = np.ones((size, size))
        panel[row[order], column[order]] = shade[order]
        panels.append(panel)
    return np.concatenate(panels, axis=1)


def save_preview(path, vertices: np.ndarray, faces: np.ndarray, title: str = "", size: int = 256) -> None:
    """Write the views as a PNG (with an optional title line above), atomically."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rbfield.io import atomic_write_bytes

    image = render_views(vertices, faces, size)
    figure = plt.figure(figsize=(image.shape[1] / 100, image.shape[0] / 100 + 0.3), dpi=100)
    axes = figure.add_axes([0, 0, 1, image.shape[0] / (image.shape[0] + 30)])
    axes.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    axes.axis("off")
    figure.suptitle(title, fontsize=9, y=0.995)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())
