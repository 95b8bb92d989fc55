"""Adaptive RBFs: neighbours, kernels, sinusoid composition (fast vs reference), init."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rbfield.encodings import AdaptiveRBF, neighbours
from rbfield.encodings.neighbours import NeighbourIndex, brute_force_neighbours
from rbfield.encodings.rbf import kernel_values
from rbfield.encodings.rbf_init import cluster_covariances, weighted_kmeans
from rbfield.ops.rbf_compose import angle_tables, compose_fixed_angles, compose_reference


def test_neighbours_match_brute_force():
    centres = torch.rand(300, 2)
    points = torch.rand(500, 2) * 1.4 - 0.2  # some outside the domain
    for k in (1, 4, 8):
        fast = NeighbourIndex(centres).query(points, k)
        reference = brute_force_neighbours(points, centres, k)
        # Compare distances (ties may order differently).
        d_fast = ((points[:, None] - centres[fast]) ** 2).sum(-1)
        d_ref = ((points[:, None] - centres[reference]) ** 2).sum(-1)
        torch.testing.assert_close(d_fast, d_ref)


@pytest.mark.parametrize("dim", [2, 3])
def test_candidate_grid_neighbours_match_brute_force(fast_paths_on, monkeypatch, dim):
    # A short cap, so that some voxels' lists are capped and their points go to the tree.
    monkeypatch.setattr(neighbours, "GRID_MAX_CANDIDATES", 16)
    generator = torch.Generator().manual_seed(dim)
    # A dense cluster (as adaptive placement makes near detail) and a sparse far field.
    centres = torch.cat(
        [0.5 + 0.03 * torch.randn(400, dim, generator=generator), torch.rand(40, dim, generator=generator)]
    )
    points = torch.cat(
        [
            torch.rand(6000, dim, generator=generator) * 1.4 - 0.2,  # some outside the gridded box
            centres[:50],  # on centres
            torch.zeros(1, dim),
            torch.ones(1, dim),  # the box's corners
        ]
    )
    index = NeighbourIndex(centres, grid_after_points=0)
    for k in (1, 8):
        fast = index.query(points, k)
        grid = index.candidate_grid(k)
        # Both paths run: the grid answers complete voxels, the tree the rest.
        assert grid is not None and grid.complete.any()
        assert k == 1 or not grid.complete.all()
        reference = brute_force_neighbours(points, centres, k)
        d_fast = ((points[:, None] - centres[fast]) ** 2).sum(-1)
        d_ref = ((points[:, None] - centres[reference]) ** 2).sum(-1)
        torch.testing.assert_close(d_fast, d_ref)
        assert (fast == reference).float().mean() > 0.999  # same indices, up to exact ties


def test_candidate_grid_relists_long_voxels(fast_paths_on, monkeypatch):
    # Lists first cut at 8 are listed again, 32, 128, ... long: every voxel ends complete.
    monkeypatch.setattr(neighbours, "GRID_FIRST_CANDIDATES", 8)
    monkeypatch.setattr(neighbours, "GRID_MAX_CANDIDATES", 10_000)
    generator = torch.Generator().manual_seed(5)
    centres = torch.cat([0.5 + 0.02 * torch.randn(600, 3, generator=generator), torch.rand(60, 3, generator=generator)])
    points = torch.cat(
        [0.5 + 0.05 * torch.randn(4000, 3, generator=generator), torch.rand(2000, 3, generator=generator)]
    )
    index = NeighbourIndex(centres, grid_after_points=0)
    fast = index.query(points, 4)
    grid = index.candidate_grid(4)
    assert grid.complete.all() and grid.longest > 32
    lengths = np.diff(grid.offsets)
    assert len(grid.candidates) == lengths.sum() and (lengths >= 4).all()
    tree = NeighbourIndex(centres, grid_after_points=2**62).query(points, 4)
    assert torch.equal(fast, tree)


def test_candidate_grid_waits_for_repeated_queries(fast_paths_on):
    centres = torch.rand(50, 3)
    index = NeighbourIndex(centres, grid_after_points=1000)
    index.query(torch.rand(600, 3), 4)
    assert index.candidate_grid(4) is None
    index.query(torch.rand(600, 3), 4)  # the tree has now answered 1,200 points
    index.query(torch.rand(10, 3), 4)
    assert index.candidate_grid(4) is not None
    small = NeighbourIndex(centres[:3], grid_after_points=0)
    assert small.query(torch.rand(5, 3), 8).shape == (5, 3)
    assert small.candidate_grid(8).complete.all()  # every list holds all 3 centres


def test_k_larger_than_kernel_count_and_empty_batch():
    centres = torch.rand(3, 2)
    index = NeighbourIndex(centres).query(torch.rand(5, 2), 8)
    assert index.shape == (5, 3)
    assert sorted(index[0].tolist()) == [0, 1, 2]
    assert NeighbourIndex(centres).query(torch.zeros(0, 2), 4).shape == (0, 3)
    rbf = AdaptiveRBF(2, n_kernels=3, n_channels=4, k_neighbours=8)
    assert rbf(torch.rand(6, 2)).shape == (6, 4)
    assert rbf(torch.zeros(0, 2)).shape == (0, 4)


def test_kernel_values_known_numbers():
    x = torch.tensor([[0.3, 0.4]])
    centres = torch.tensor([[[0.0, 0.0], [0.3, 0.4]]])
    inverse_cov = torch.tensor([[[4.0, 0.0], [0.0, 1.0]]]).expand(1, 2, 2, 2)
    # q = 4 * 0.09 + 0.16 = 0.52 at the first kernel, 0 at the second.
    iq = kernel_values("inverse_quadric", x, centres, inverse_cov)
    torch.testing.assert_close(iq, torch.tensor([[1 / 1.52, 1.0]]))
    gauss = kernel_values("gaussian", x, centres, inverse_cov)
    torch.testing.assert_close(gauss, torch.tensor([[np.exp(-0.26), 1.0]], dtype=torch.float32))
    tent = kernel_values("tent", x, centres, torch.tensor([[[2.0, 1.0], [2.0, 1.0]]]))
    torch.testing.assert_close(tent, torch.tensor([[(1 - 0.6) * (1 - 0.4), 1.0]]))


#: Kernels in the compose tests: fewer than the 200 (point, neighbour) pairs, or more, which takes
#: the backward that sorts the pairs by row (a batch touching few of many kernels).
KERNEL_COUNTS = pytest.mark.parametrize("n_kernels", [20, 700], ids=["most-rows-touched", "few-rows-touched"])


def _compose_inputs(dtype=torch.float32, n_kernels=20):
    generator = torch.Generator().manual_seed(1)
    index = torch.randint(0, n_kernels, (50, 4), generator=generator)
    index[0] = 3  # repeated kernel within one point: gradients must accumulate
    values = torch.rand(50, 4, generator=generator, dtype=dtype)
    weights = torch.randn(n_kernels, 6, generator=generator, dtype=dtype)
    frequencies = 2.0 ** torch.linspace(-3, 5, 6, dtype=dtype)
    phase = torch.randn(6, generator=generator, dtype=dtype)
    return index, values, weights, frequencies, phase


@KERNEL_COUNTS
@pytest.mark.parametrize("use_numba", [True, False], ids=["numba", "torch"])
@pytest.mark.usefixtures("fast_paths_on")
def test_fast_compose_matches_reference_values_and_gradients(monkeypatch, use_numba, n_kernels):
    import rbfield.ops.rbf_compose as compose

    if use_numba:
        assert compose.numba_kernels() is not None, "the Numba kernels should load here"
    else:
        monkeypatch.setattr(compose, "numba_kernels", lambda: None)
    index, values, weights, frequencies, phase = _compose_inputs(n_kernels=n_kernels)
    w1, b1 = weights.clone().requires_grad_(), phase.clone().requires_grad_()
    w2, b2 = weights.clone().requires_grad_(), phase.clone().requires_grad_()
    reference = compose_reference(index, values, w1, frequencies, b1)
    fast = compose_fixed_angles(index, *angle_tables(values, frequencies), w2, b2)
    torch.testing.assert_close(fast, reference, atol=1e-5, rtol=1e-5)
    upstream = torch.randn_like(reference)
    (reference * upstream).sum().backward()
    (fast * upstream).sum().backward()
    torch.testing.assert_close(w2.grad, w1.grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(b2.grad, b1.grad, atol=1e-4, rtol=1e-5)


@pytest.mark.usefixtures("fast_paths_on")
def test_missing_numba_warns_once_and_falls_back(monkeypatch):
    import builtins
    import warnings

    import rbfield.ops as ops

    real_import = builtins.__import__

    def no_numba(name, *args, **kwargs):
        if name == "numba" or name.startswith("numba."):
            raise ImportError("No module named 'numba'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(ops, "_NUMBA_STATE", {})
    monkeypatch.delitem(__import__("sys").modules, "rbfield.ops.compiled", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_numba)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert ops.numba_kernels() is None
        assert ops.numba_kernels() is None
    assert len([w for w in caught if "Numba is not usable" in str(w.message)]) == 1
    index, values, weights, frequencies, phase = _compose_inputs()
    torch.testing.assert_close(
        compose_fixed_angles(index, *angle_tables(values, frequencies), weights, phase),
        compose_reference(index, values, weights, frequencies, phase),
        atol=1e-5,
        rtol=1e-5,
    )


@KERNEL_COUNTS
def test_fast_compose_gradcheck_double(n_kernels):
    index, values, weights, frequencies, phase = _compose_inputs(torch.float64, n_kernels)
    tables = angle_tables(values, frequencies)
    assert torch.autograd.gradcheck(
        lambda w, b: compose_fixed_angles(index, *tables, w, b),
        (weights.requires_grad_(), phase.requires_grad_()),
    )


def test_rbf_encoding_gradcheck_double_including_coordinates():
    # normalize=False: the normalized kernel detaches its denominator on purpose
    # (as NeuRBF does), so its x-gradient is not the finite difference.
    rbf = AdaptiveRBF(
        2, n_kernels=16, n_channels=3, frequency_range=(0.5, 4.0), normalize=False, init_scale=1.0
    ).double()
    x = (torch.rand(10, 2, dtype=torch.float64) * 0.8 + 0.1).requires_grad_()
    assert torch.autograd.gradcheck(rbf, (x,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("dtype, atol", [(torch.float64, 1e-9), (torch.float32, 2e-3)])
@pytest.mark.usefixtures("fast_paths_on")
def test_cached_fast_path_equals_uncached(monkeypatch, dtype, atol):
    # In float32 the angles phi * m reach 2^12 rad, where float32 spacing is
    # ~5e-4 rad, so the two (equally valid) roundings differ by that much
    # times |w| (~1 here) times k (4); float64 must agree tightly.
    rbf = AdaptiveRBF(2, n_kernels=64, n_channels=8, init_scale=1.0).to(dtype)
    with torch.no_grad():
        rbf.phase.uniform_(-1, 1)
    x = torch.rand(200, 2, dtype=dtype)
    first = rbf(x)  # fills the cache
    assert rbf._cache is not None and rbf._cache[-1] is not None
    cached = rbf(x)  # fast path
    monkeypatch.setenv("RBFIELD_DISABLE_FAST", "1")
    reference = rbf(x.clone())  # new tensor: no cache, reference path
    torch.testing.assert_close(cached, reference, atol=atol, rtol=0)
    torch.testing.assert_close(first, reference, atol=atol, rtol=0)


def test_weighted_kmeans_finds_weighted_blobs():
    rng = np.random.default_rng(0)
    blob_a = rng.normal([0.2, 0.2], 0.02, size=(400, 2))
    blob_b = rng.normal([0.8, 0.6], 0.05, size=(400, 2))
    noise = rng.uniform(0, 1, size=(400, 2))
    points = np.concatenate([blob_a, blob_b, noise])
    weights = np.concatenate([np.ones(800), np.zeros(400)]) + 1e-9
    centres, assignment = weighted_kmeans(points, weights, 2, seed=0)
    found = sorted(map(tuple, np.round(centres, 1)))
    assert found == [(0.2, 0.2), (0.8, 0.6)]
    covariance = cluster_covariances(points, weights, centres, assignment, alpha=0.5, min_std=1e-4, max_std=1.0)
    stds = sorted(np.sqrt(np.diagonal(covariance, axis1=1, axis2=2)).mean(1))
    # The cluster spread divided by alpha = 0.5: std * sqrt(2).
    assert stds[0] == pytest.approx(0.02 * np.sqrt(2), rel=0.15)
    assert stds[1] == pytest.approx(0.05 * np.sqrt(2), rel=0.15)


def test_cluster_covariances_are_the_weighted_covariances_over_alpha():
    rng = np.random.default_rng(4)
    points = rng.random((5000, 3))
    weights = rng.random(5000)
    centres, assignment = weighted_kmeans(points, weights, 7, seed=1)
    covariance = cluster_covariances(points, weights, centres, assignment, alpha=0.5, min_std=1e-6, max_std=10.0)
    for cluster in range(7):
        mine = assignment == cluster
        expected = np.cov(points[mine], rowvar=False, aweights=weights[mine], bias=True) / 0.5
        np.testing.assert_allclose(covariance[cluster], expected, rtol=1e-9, atol=1e-15)


def test_initialize_moves_kernels_to_edges(coffee_crop):
    from rbfield.signals.image import ImageSignal

    signal = ImageSignal(coffee_crop)
    points, weights, spacing = signal.rbf_init_samples(100)
    rbf = AdaptiveRBF(2, n_kernels=100, n_channels=4)
    rbf.initialize(points, weights, spacing)
    # Kernels sit where the gradient is strong: their mean weight beats the image mean.
    nearest = NeighbourIndex(points).query(rbf.centres.detach(), 1)[:, 0]
    assert weights[nearest].mean() > 1.5 * weights.mean()
    eigenvalues = torch.linalg.eigvalsh(torch.linalg.inv(rbf.shapes.detach().double()))
    assert eigenvalues.min() >= (0.5 * spacing) ** 2 * 0.999


def test_placement_power_below_one_moves_kernels_into_smooth_regions():
    """On a real photo of sky and towers, the image preset's placement power (< 1) puts more of
    its RBFs on the flatter half of the pixels than the paper's weights do, and the field's
    initialisation hands the encoding's power to the signal."""
    from dataclasses import replace

    from skimage import data

    import rbfield
    from rbfield.fields import default_settings
    from rbfield.signals.image import centre_crop, image_to_float, pixel_centres

    preset = default_settings("neurbf", "image")
    assert preset.placement_power < 1.0
    signal = rbfield.ImageSignal(image_to_float(centre_crop(data.rocket(), 128)))
    sobel = signal.rbf_init_samples(64)[1]
    flat = sobel <= sobel.median()
    shares = {}
    for power in (1.0, preset.placement_power):
        settings = replace(preset, placement_power=power)
        field = rbfield.build_field("neurbf", signal.spec(), "16k", settings=settings)
        field.initialize(signal)
        (rbf,) = field.rbf_encodings()
        assert rbf.placement_power == power
        pixel = NeighbourIndex(pixel_centres(128, 128)).query(rbf.centres.detach(), 1)[:, 0]
        shares[power] = flat[pixel].float().mean().item()
    assert shares[preset.placement_power] > shares[1.0] + 0.05
