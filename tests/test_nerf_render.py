"""Volume rendering identities, ray marching and the occupancy grid."""

from __future__ import annotations

import math

import torch

from rbfield.scenes.occupancy import OccupancyGrid
from rbfield.scenes.rays import ray_box
from rbfield.scenes.render import (
    accumulate,
    composite,
    exclusive_segment_sum,
    march,
    march_occupancy,
    render_rays,
    render_weights,
)


def dense_reference(sigmas: torch.Tensor, delta: float) -> torch.Tensor:
    """Weights of one ray by the textbook product formula."""
    alphas = 1 - torch.exp(-sigmas * delta)
    transmittance = torch.cumprod(torch.cat([torch.ones(1), 1 - alphas[:-1]]), 0)
    return transmittance * alphas


def packed_example():
    counts = torch.tensor([3, 0, 5, 1])
    ray_index = torch.repeat_interleave(torch.arange(4), counts)
    sigmas = torch.rand(int(counts.sum())) * 20
    t_start = torch.cat([torch.arange(int(c)) * 0.1 for c in counts]).float()
    return counts, ray_index, sigmas, t_start, t_start + 0.1


def test_weights_match_the_product_formula_per_ray():
    counts, ray_index, sigmas, t_start, t_end = packed_example()
    weights, transmittance, alphas = render_weights(sigmas, t_start, t_end, ray_index, 4)
    start = 0
    for count in counts.tolist():
        part = slice(start, start + count)
        assert torch.allclose(weights[part], dense_reference(sigmas[part], 0.1), atol=1e-6)
        start += count
    assert torch.allclose(weights, transmittance * alphas)


def test_opacity_is_one_minus_final_transmittance():
    counts, ray_index, sigmas, t_start, t_end = packed_example()
    weights, _, _ = render_weights(sigmas, t_start, t_end, ray_index, 4)
    opacity = accumulate(weights, None, ray_index, 4)[:, 0]
    tau = accumulate(sigmas * (t_end - t_start), None, ray_index, 4)[:, 0]
    assert torch.allclose(opacity, 1 - torch.exp(-tau), atol=1e-6)
    assert opacity[1] == 0  # a ray without samples is transparent
    assert torch.all(opacity <= 1)


def test_constant_colour_and_background():
    counts, ray_index, sigmas, t_start, t_end = packed_example()
    weights, _, _ = render_weights(sigmas, t_start, t_end, ray_index, 4)
    colour = torch.tensor([0.2, 0.5, 0.9]).expand(len(sigmas), 3)
    rgb = accumulate(weights, colour, ray_index, 4)
    opacity = accumulate(weights, None, ray_index, 4)
    pixel = composite(rgb, opacity, 1.0)
    expected = opacity * torch.tensor([0.2, 0.5, 0.9]) + (1 - opacity)
    assert torch.allclose(pixel, expected, atol=1e-6)
    assert torch.allclose(pixel[1], torch.ones(3))  # empty ray shows the background


def test_exclusive_sum_is_exact_late_in_long_lists():
    values = torch.full((200_000,), 50.0)
    ray_index = torch.repeat_interleave(torch.arange(100_000), 2)
    result = exclusive_segment_sum(values, ray_index, 100_000)
    assert torch.equal(result[-2:], torch.tensor([0.0, 50.0]))


def test_weight_gradients_match_the_dense_formula():
    sigmas = (torch.rand(6) * 10).requires_grad_()
    t_start = torch.arange(6) * 0.2
    weights, _, _ = render_weights(sigmas, t_start, t_start + 0.2, torch.zeros(6, dtype=torch.long), 1)
    (weights * torch.arange(6)).sum().backward()
    reference = sigmas.detach().clone().requires_grad_()
    (dense_reference(reference, 0.2) * torch.arange(6)).sum().backward()
    assert torch.allclose(sigmas.grad, reference.grad, atol=1e-5)


def test_march_keeps_occupied_samples_in_order():
    origins = torch.tensor([[0.0, 0.0, 4.0], [0.5, 0.0, 4.0]])
    directions = torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, -1.0]])
    near, far = torch.tensor([3.0, 3.0]), torch.tensor([5.0, 5.0])
    ray_index, t_start, t_end = march(origins, directions, near, far, 0.1, lambda p: p[:, 2] > 0)
    assert torch.equal(ray_index, torch.repeat_interleave(torch.arange(2), 10))
    assert torch.allclose(t_start[:10], 3.0 + torch.arange(10) * 0.1, atol=1e-5)
    assert torch.all(t_end - t_start > 0.0999)


def test_fused_march_gives_the_same_samples_as_the_reference(fast_paths_on):
    generator = torch.Generator().manual_seed(0)
    grid = OccupancyGrid(-torch.ones(3), torch.ones(3), 16)
    grid.occupied.copy_(torch.rand(16**3, generator=generator) < 0.3)
    # Rays from a sphere of cameras at radius 3 towards jittered targets; some miss the box.
    eyes = torch.nn.functional.normalize(torch.randn(500, 3, generator=generator), dim=1) * 3.0
    directions = torch.nn.functional.normalize(torch.randn(500, 3, generator=generator) * 0.8 - eyes, dim=1)
    directions[:3] = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # axis-parallel rays
    near, far = ray_box(eyes, directions, grid.box_min, grid.box_max)
    assert (far <= near).any() and (far > near).any()
    for jitter in (None, torch.rand(500, generator=generator)):
        fused = march_occupancy(eyes, directions, near, far, 0.01, grid, jitter)
        reference = march(eyes, directions, near, far, 0.01, grid.query, jitter)
        assert fused[0].numel() > 1000
        for a, b in zip(fused, reference):
            assert torch.equal(a, b)
    missed = march_occupancy(eyes[:1], directions[:1], far[:1] + 1, far[:1], 0.01, grid)
    assert all(t.numel() == 0 for t in missed)


class Sphere(torch.nn.Module):
    """An opaque red sphere of radius 0.5 (density 200 inside)."""

    def __init__(self):
        super().__init__()
        self.box_min, self.box_max = -torch.ones(3), torch.ones(3)
        self.occupancy = OccupancyGrid(self.box_min, self.box_max, 32)

    def density(self, x):
        return torch.where(x.norm(dim=-1) < 0.5, 200.0, 0.0)

    def colour(self, x, directions):
        return torch.tensor([1.0, 0.0, 0.0]).expand(x.shape[0], 3)


def test_render_sphere_with_occupancy_and_early_termination():
    sphere = Sphere()
    sphere.occupancy.update(sphere.density, 0.01)
    assert 0.01 < sphere.occupancy.occupied.float().mean() < 0.2
    origins = torch.tensor([[0.0, 0.0, 4.0], [0.9, 0.0, 4.0]])
    directions = torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, -1.0]])
    out = render_rays(sphere, origins, directions, 0.01)
    assert torch.allclose(out["rgb"][0], torch.tensor([1.0, 0.0, 0.0]), atol=1e-3)
    assert torch.allclose(out["rgb"][1], torch.ones(3))
    assert abs(out["depth"][0].item() - 3.5) < 0.02
    # Early termination: the hit ray keeps only samples up to a few steps inside the sphere.
    assert out["samples"] < 20
    assert math.isclose(out["opacity"][1].item(), 0.0)


def test_video_is_mp4_or_falls_back_to_gif(tmp_path, monkeypatch):
    import numpy as np
    from PIL import Image

    from rbfield.scenes import video

    frames = (np.random.default_rng(0).random((3, 21, 33, 3)) * 255).astype(np.uint8)  # odd sizes get padded
    has_mp4 = video.mp4_available()
    if has_mp4:
        path = video.write_video(tmp_path / "a", frames)
        assert path.suffix == ".mp4" and path.stat().st_size > 100
    monkeypatch.setattr(video, "mp4_available", lambda: False)
    path = video.write_video(tmp_path / "b", frames)
    assert path.suffix == ".gif"
    with Image.open(path) as gif:
        assert gif.n_frames == 3 and gif.size == (33, 21)
    assert sorted(p.name for p in tmp_path.iterdir()) == (["a.mp4", "b.gif"] if has_mp4 else ["b.gif"])
