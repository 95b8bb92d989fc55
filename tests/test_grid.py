"""Multiresolution grid: layout, dense and hashed indexing, interpolation, gradients."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from rbfield.encodings.grid import (
    HASH_PRIMES,
    MultiresGrid,
    _compiled_kernels_for,
    grid_layout,
    grid_lookup,
    grid_lookup_reference,
)

IMPLEMENTATIONS = pytest.mark.parametrize("lookup", [grid_lookup, grid_lookup_reference], ids=["fast", "reference"])


def test_layout_follows_instant_ngp_growth():
    layout = grid_layout(2, n_levels=4, log2_table_size=10, base_resolution=16, finest_resolution=128)
    assert layout.resolutions == (16, 32, 64, 128)
    # 17^2 = 289 fits in 1024 rows; 33^2 = 1089 does not.
    assert layout.hashed == (False, True, True, True)
    assert layout.table_sizes == (289, 1024, 1024, 1024)


def _direct_lookup(grid: MultiresGrid, point: torch.Tensor) -> torch.Tensor:
    """Per-point, per-level, per-corner loop written straight from the definition."""
    d = point.shape[0]
    out = []
    offset = 0
    for resolution, size, hashed in zip(grid.layout.resolutions, grid.layout.table_sizes, grid.layout.hashed):
        pos = point.clamp(0, 1) * resolution
        cell = [min(int(math.floor(p)), resolution - 1) for p in pos.tolist()]
        frac = [p - c for p, c in zip(pos.tolist(), cell)]
        value = torch.zeros(grid.table.shape[1], dtype=grid.table.dtype)
        for corner in itertools.product((0, 1), repeat=d):
            vertex = [c + o for c, o in zip(cell, corner)]
            if hashed:
                index = 0
                for axis, v in enumerate(vertex):
                    index ^= v * HASH_PRIMES[axis]
                index %= size
            else:
                index = sum(v * (resolution + 1) ** axis for axis, v in enumerate(vertex))
            weight = math.prod(f if o else 1 - f for f, o in zip(frac, corner))
            value += weight * grid.table[offset + index].detach()
        out.append(value)
        offset += size
    return torch.cat(out)


def _table_args(grid):
    return grid.resolutions, grid.offsets, grid.table_sizes, grid.hashed


@IMPLEMENTATIONS
def test_interpolation_matches_direct_definition_2d_and_3d(lookup):
    for dim in (2, 3):
        grid = MultiresGrid(
            dim, n_levels=5, n_features=2, log2_table_size=9, base_resolution=3, finest_resolution=40, init_scale=1.0
        )
        assert any(grid.layout.hashed) and not all(grid.layout.hashed)
        points = torch.rand(40, dim) * 1.2 - 0.1  # includes points outside [0, 1]
        points[0] = 0.0
        points[1] = 1.0
        points[2] = 0.5  # on cell borders of every even resolution
        expected = torch.stack([_direct_lookup(grid, p) for p in points])
        torch.testing.assert_close(lookup(points, grid.table, *_table_args(grid)), expected, atol=1e-5, rtol=1e-5)


def test_hash_indexing_semantics_at_vertices():
    grid = MultiresGrid(2, n_levels=1, n_features=1, log2_table_size=6, base_resolution=20, finest_resolution=20)
    assert grid.layout.hashed == (True,)
    with torch.no_grad():
        grid.table.copy_(torch.arange(64, dtype=torch.float32)[:, None])
    i, j = 7, 13
    value = grid(torch.tensor([[i / 20, j / 20]]))
    expected = ((i * 1) ^ (j * 2654435761)) % 64
    assert abs(value.item() - expected) < 1e-3


def test_hash_modulo_for_a_table_that_is_not_a_power_of_two():
    grid = MultiresGrid(
        3, n_levels=1, n_features=1, log2_table_size=0, base_resolution=10, finest_resolution=10, table_size=100
    )
    assert grid.layout.hashed == (True,) and grid.layout.table_sizes == (100,)
    with torch.no_grad():
        grid.table.copy_(torch.arange(100, dtype=torch.float32)[:, None])
    i, j, k = 3, 9, 4
    expected = ((i * 1) ^ (j * 2654435761) ^ (k * 805459861)) % 100
    for lookup in (grid_lookup, grid_lookup_reference):
        value = lookup(torch.tensor([[i / 10, j / 10, k / 10]]), grid.table, *_table_args(grid))
        assert abs(value.item() - expected) < 1e-3


def test_dense_grid_reproduces_a_linear_function_exactly():
    grid = MultiresGrid(2, n_levels=1, n_features=1, log2_table_size=12, base_resolution=8, finest_resolution=8)
    assert grid.layout.hashed == (False,)
    with torch.no_grad():
        vertices = torch.stack(torch.meshgrid(torch.arange(9.0), torch.arange(9.0), indexing="xy"), -1).reshape(-1, 2)
        # Row-major with axis 0 fastest: row = v0 + 9 * v1.
        grid.table.copy_((2.0 * vertices[:, 0] - 3.0 * vertices[:, 1])[:, None] / 8)
    points = torch.rand(100, 2)
    torch.testing.assert_close(grid(points)[:, 0], 2.0 * points[:, 0] - 3.0 * points[:, 1], atol=1e-5, rtol=0)


@IMPLEMENTATIONS
def test_gradients_match_finite_differences_in_double(lookup):
    grid = MultiresGrid(
        3, n_levels=3, n_features=2, log2_table_size=6, base_resolution=2, finest_resolution=9, init_scale=1.0
    ).double()
    points = (torch.rand(12, 3, dtype=torch.float64) * 0.9 + 0.05).requires_grad_()

    table = grid.table.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda x, t: lookup(x, t, *_table_args(grid)), (points, table), eps=1e-6, atol=1e-5)


def test_fast_and_reference_agree_on_values_and_gradients_at_edges():
    # Tiny tables force hash collisions; points on cell borders, bounds and outside.
    grid = MultiresGrid(
        2, n_levels=6, n_features=3, log2_table_size=5, base_resolution=2, finest_resolution=64, init_scale=1.0
    )
    border = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.5, 0.25], [0.125, 1.0], [-0.3, 1.7], [1.0, 0.0]])
    points = torch.cat([border, torch.rand(300, 2)])
    upstream = torch.randn(points.shape[0], 18)
    results = []
    for lookup in (grid_lookup, grid_lookup_reference):
        table = grid.table.detach().clone().requires_grad_()
        x = points.clone().requires_grad_()
        out = lookup(x, table, *_table_args(grid))
        (out * upstream).sum().backward()
        results.append((out.detach(), table.grad, x.grad))
    for fast, reference in zip(*results):
        torch.testing.assert_close(fast, reference, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n_features", [2, 3])  # two features have their own loops
@pytest.mark.usefixtures("fast_paths_on")
def test_compiled_kernels_agree_with_the_reference_on_values_and_table_gradients(dim, dtype, n_features):
    # Points without gradients take the fused Numba kernels. Tiny tables force
    # hash collisions; points sit on cell borders, on the bounds and outside.
    grid = MultiresGrid(
        dim,
        n_levels=6,
        n_features=n_features,
        log2_table_size=5,
        base_resolution=2,
        finest_resolution=64,
        init_scale=1.0,
    ).to(dtype)
    assert any(grid.layout.hashed) and not all(grid.layout.hashed)
    assert _compiled_kernels_for(torch.zeros(1, dim, dtype=dtype), grid.table) is not None
    corners = torch.tensor(
        [[0.0] * dim, [1.0] * dim, [0.5] * dim, [0.125] * dim, [-0.3] * dim, [1.7] * dim], dtype=dtype
    )
    points = torch.cat([corners, torch.rand(500, dim, dtype=dtype)])
    upstream = torch.randn(points.shape[0], 6 * n_features, dtype=dtype)
    results = []
    for lookup in (grid_lookup, grid_lookup_reference):
        table = grid.table.detach().clone().requires_grad_()
        out = lookup(points, table, *_table_args(grid))
        (out * upstream).sum().backward()
        results.append((out.detach(), table.grad))
    tolerance = 1e-5 if dtype == torch.float32 else 1e-12
    for fast, reference in zip(*results):
        torch.testing.assert_close(fast, reference, atol=tolerance, rtol=tolerance)


@IMPLEMENTATIONS
def test_empty_batch(lookup):
    grid = MultiresGrid(2, 2, 2, 8, 4, 16)
    assert lookup(torch.zeros(0, 2), grid.table, *_table_args(grid)).shape == (0, 4)


def test_disabling_fast_paths_uses_the_reference(monkeypatch):
    grid = MultiresGrid(3, 4, 2, 8, 2, 20, init_scale=1.0)
    points = torch.rand(50, 3)
    fast = grid(points)
    monkeypatch.setenv("RBFIELD_DISABLE_FAST", "1")
    torch.testing.assert_close(grid(points), fast, atol=1e-6, rtol=1e-6)


def test_fast_path_keeps_the_callers_thread_count():
    """Numba's OpenMP pool must not raise PyTorch's thread count (OMP_NUM_THREADS=1 stays 1)."""
    import os
    import subprocess
    import sys

    pytest.importorskip("numba")
    script = (
        "import torch, numba\n"
        "from rbfield.encodings.grid import MultiresGrid\n"
        "grid = MultiresGrid(3, 4, 2, 10, 4, 64)\n"
        "grid(torch.rand(100, 3)).sum().backward()\n"
        "print(torch.get_num_threads(), numba.get_num_threads())\n"
    )
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "RBFIELD_DISABLE_FAST": "0"}
    result = subprocess.run(
        [sys.executable, "-c", script], env=environment, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "1"]
