"""Radiance-field meshes: visibility from outside the box, the hidden-inside fill and dropped floaters."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from rbfield.scenes.mesh import extract_mesh
from rbfield.scenes.visibility import hemisphere_axes, optical_depths, outside_transmittance


class ShellField(nn.Module):
    """A hollow ball (density 200 for 0.5 < r < 0.7, empty inside) and a small far blob; grey colour."""

    def __init__(self, blob_radius: float = 0.04):
        super().__init__()
        self.box_min, self.box_max = torch.full((3,), -1.0), torch.full((3,), 1.0)
        self.blob_radius = blob_radius

    def density(self, x: torch.Tensor) -> torch.Tensor:
        r = x.norm(dim=-1)
        shell = (r > 0.5) & (r < 0.7)
        blob = (x - torch.tensor([0.75, 0.75, 0.0])).norm(dim=-1) < self.blob_radius
        return 200.0 * (shell | blob).float()

    def forward(self, x: torch.Tensor, directions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.density(x), torch.full((x.shape[0], 3), 0.5)


def test_axes_and_their_opposites_cover_the_sphere():
    axes = hemisphere_axes(8)
    assert torch.allclose(axes.norm(dim=-1), torch.ones(8), atol=1e-6) and torch.all(axes[:, 2] > 0)
    directions = torch.cat([axes, -axes])
    probes = torch.nn.functional.normalize(torch.randn(10_000, 3), dim=-1)
    assert (probes @ directions.T).amax(1).min() > np.cos(np.radians(45))  # every direction within 45 degrees of one


def test_optical_depth_through_a_slab():
    resolution = 41
    axis = np.linspace(-1, 1, resolution)
    density = np.zeros((resolution,) * 3, np.float32)
    density[np.abs(axis) <= 0.2] = 5.0  # a slab across x, 0.4 thick: optical depth 2 behind it
    forward, backward = optical_depths(density, torch.tensor([1.0, 0.0, 0.0]), torch.full((3,), -1.0), torch.ones(3))
    middle = resolution // 2
    assert forward[5, middle, middle] < 0.05 and abs(backward[5, middle, middle] - 2.0) < 0.25  # x = -0.75
    assert abs(forward[-5, middle, middle] - 2.0) < 0.25 and backward[-5, middle, middle] < 0.05  # x = 0.75
    seen = outside_transmittance(density, torch.full((3,), -1.0), torch.ones(3))
    assert seen[np.abs(axis) > 0.3].min() > 0.5  # both sides of the slab are lit from their side
    assert seen[middle, middle, middle] < 0.5  # its middle is hidden from every direction


def test_hidden_inside_is_filled_and_floaters_dropped():
    field = ShellField()
    raw, _, _ = extract_mesh(field, 48, level=10.0, fill=False, min_piece_share=0.0)
    radius = np.linalg.norm(raw, axis=1)
    assert (radius < 0.55).any() and (radius > 0.65).any()  # the raw iso-surface also wraps the empty inside
    vertices, faces, colours = extract_mesh(field, 48, level=10.0)
    radius = np.linalg.norm(vertices, axis=1)
    assert radius.min() > 0.62 and radius.max() < 0.75  # only the outer sphere: inside filled, blob dropped
    assert faces.max() < len(vertices) and colours.shape == (len(vertices), 3)
    kept, _, _ = extract_mesh(field, 48, level=10.0, min_piece_share=0.0)
    assert np.linalg.norm(kept - np.array([0.75, 0.75, 0.0]), axis=1).min() < 0.1  # the blob, when every piece is kept
