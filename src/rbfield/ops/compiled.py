"""Fused CPU kernels compiled at run time by Numba (LLVM, shipped in its wheel:
no C compiler is needed). Imported lazily by :func:`rbfield.ops.numba_kernels`.

Each kernel works on NumPy views of contiguous CPU tensors and is checked
against the PyTorch twin in ``tests/test_rbf.py``.
"""

import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def compose_forward(index, sin_table, cos_table, weights, cos_b, sin_b, out, sum_sin, sum_cos):
    """out[p, c] = cos b_c * sum_k w[i_pk, c] sin_pkc + sin b_c * sum_k w[i_pk, c] cos_pkc.

    Args:
        index: (P, k) int64; sin_table, cos_table: (P, k, C); weights: (N, C);
        cos_b, sin_b: (C,). Writes out, sum_sin, sum_cos: (P, C).
    """
    n_points, k = index.shape
    channels = weights.shape[1]
    for p in prange(n_points):
        for c in range(channels):
            sum_sin[p, c] = 0.0
            sum_cos[p, c] = 0.0
        for j in range(k):
            row = index[p, j]
            for c in range(channels):
                w = weights[row, c]
                sum_sin[p, c] += w * sin_table[p, j, c]
                sum_cos[p, c] += w * cos_table[p, j, c]
        for c in range(channels):
            out[p, c] = sum_sin[p, c] * cos_b[c] + sum_cos[p, c] * sin_b[c]


@njit(parallel=True, cache=True)
def compose_weight_grad(index, sin_table, cos_table, grad_out, cos_b, sin_b, n_kernels, n_chunks):
    """d loss / d weights, (N, C): each of n_chunks point ranges accumulates into
    its own buffer (no write races, a fixed summation order), then the buffers
    are summed."""
    n_points, k = index.shape
    channels = grad_out.shape[1]
    partial = np.zeros((n_chunks, n_kernels, channels), dtype=grad_out.dtype)
    chunk = (n_points + n_chunks - 1) // n_chunks
    for t in prange(n_chunks):
        for p in range(t * chunk, min(n_points, (t + 1) * chunk)):
            for j in range(k):
                row = index[p, j]
                for c in range(channels):
                    partial[t, row, c] += grad_out[p, c] * (cos_b[c] * sin_table[p, j, c] + sin_b[c] * cos_table[p, j, c])
    return partial.sum(axis=0)


@njit(cache=True, inline="always")
def _grid_axis_terms(x, p, level, resolution_floats, resolutions, hashed, primes, terms, weights, dim):
    """Per axis, the index term and d-linear weight factor of the lower (column 0)
    and upper (column 1) vertex of point p's cell at one level.

    Index terms are ``vertex * prime`` (hashed levels, to be XORed) or
    ``vertex * stride`` (dense levels, to be added). Cell and fraction follow
    the PyTorch paths: ``cell = min(floor(x * N), N - 1)``, ``frac = x * N - cell``.
    """
    resolution_float = resolution_floats[level]
    stride = 1
    for axis in range(dim):
        position = x[p, axis] * resolution_float
        lower = min(np.floor(position), resolution_float - 1)
        frac = position - lower
        cell = np.int64(lower)
        step = primes[axis] if hashed[level] else stride
        terms[axis, 0] = cell * step
        terms[axis, 1] = (cell + 1) * step
        weights[axis, 0] = 1.0 - frac
        weights[axis, 1] = frac
        stride *= resolutions[level] + 1


@njit(cache=True, inline="always")
def _grid_corners_of_dim(
    x, p, level, resolution_floats, resolutions, offsets, table_sizes, hashed, primes,
    terms, weights, rows, corner_weights, dim,
):
    """Fill rows (2**d,) with the table rows of point p's cell corners at one
    level and corner_weights (2**d,) with their d-linear weights. Bit ``a`` of
    a corner's number set means the upper vertex along axis ``a``."""
    _grid_axis_terms(x, p, level, resolution_floats, resolutions, hashed, primes, terms, weights, dim)
    is_hashed = hashed[level]
    size = table_sizes[level]
    inverse_size = 1.0 / size
    for corner in range(1 << dim):
        index = terms[0, corner & 1]
        weight = weights[0, corner & 1]
        for axis in range(1, dim):
            upper = (corner >> axis) & 1
            weight *= weights[axis, upper]
            if is_hashed:
                index ^= terms[axis, upper]
            else:
                index += terms[axis, upper]
        if is_hashed:
            # index % size without a 64-bit division: hashes stay below 2**53,
            # so the float quotient is off by at most one.
            index -= np.int64(index * inverse_size) * size
            if index < 0:
                index += size
            elif index >= size:
                index -= size
        rows[corner] = offsets[level] + index
        corner_weights[corner] = weight


@njit(cache=True, inline="always")
def _grid_corners(
    x, p, level, resolution_floats, resolutions, offsets, table_sizes, hashed, primes,
    terms, weights, rows, corner_weights,
):
    """:func:`_grid_corners_of_dim` with d = 2 and d = 3 as constants, so that
    the compiler unrolls the axis and corner loops of the common cases."""
    if x.shape[1] == 2:
        _grid_corners_of_dim(
            x, p, level, resolution_floats, resolutions, offsets, table_sizes, hashed, primes,
            terms, weights, rows, corner_weights, 2,
        )
    elif x.shape[1] == 3:
        _grid_corners_of_dim(
            x, p, level, resolution_floats, resolutions, offsets, table_sizes, hashed, primes,
            terms, weights, rows, corner_weights, 3,
        )
    else:
        _grid_corners_of_dim(
            x, p, level, resolution_floats, resolutions, offsets, table_sizes, hashed, primes,
            terms, weights, rows, corner_weights, x.shape[1],
        )


@njit(parallel=True, cache=True)
def grid_forward(x, table, resolution_floats, resolutions, offsets, table_sizes, hashed, primes, out, n_chunks):
    """d-linear multiresolution grid interpolation, one pass, no temporaries.

    Args:
        x: (P, d) points clamped to [0, 1]; table: (R, F) rows of all levels;
        resolution_floats: (L,) resolutions in x's dtype; resolutions, offsets,
        table_sizes: (L,) int64; hashed: (L,) bool; primes: (d,) int64.
        Writes out: (P, L * F), level-major.
    """
    n_points, dim = x.shape
    n_levels = resolutions.shape[0]
    n_features = table.shape[1]
    chunk = (n_points + n_chunks - 1) // n_chunks
    n_corners = 1 << dim
    for t in prange(n_chunks):
        terms = np.empty((dim, 2), np.int64)
        weights = np.empty((dim, 2), x.dtype)
        rows = np.empty(n_corners, np.int64)
        corner_weights = np.empty(n_corners, x.dtype)
        for p in range(t * chunk, min(n_points, (t + 1) * chunk)):
            for level in range(n_levels):
                _grid_corners(
                    x, p, level, resolution_floats, resolutions, offsets, table_sizes, hashed, primes,
                    terms, weights, rows, corner_weights,
                )
                for f in range(n_features):
                    total = 0.0
                    for corner in range(n_corners):
                        total += corner_weights[corner] * table[rows[corner], f]
                    out[p, level * n_features + f] = total


@njit(parallel=True, cache=True)
def grid_table_grad(x, resolution_floats, resolutions, offsets, table_sizes, hashed, primes, grad_out, grad_table):
    """d loss / d table, accumulated into the zeroed grad_table (R, F).

    Levels own disjoint row ranges, so threads split the work by level: no
    write races and a fixed summation order (deterministic).
    """
    n_points, dim = x.shape
    n_levels = resolutions.shape[0]
    n_features = grad_table.shape[1]
    n_corners = 1 << dim
    for level in prange(n_levels):
        terms = np.empty((dim, 2), np.int64)
        weights = np.empty((dim, 2), x.dtype)
        rows = np.empty(n_corners, np.int64)
        corner_weights = np.empty(n_corners, x.dtype)
        for p in range(n_points):
            _grid_corners(
                x, p, level, resolution_floats, resolutions, offsets, table_sizes, hashed, primes,
                terms, weights, rows, corner_weights,
            )
            for f in range(n_features):
                upstream = grad_out[p, level * n_features + f]
                for corner in range(n_corners):
                    grad_table[rows[corner], f] += corner_weights[corner] * upstream


@njit(parallel=True, cache=True)
def nearest_among_candidates(
    points, centres, box_min, cells_per_unit, resolution, offsets, candidates, complete, index_out, found, n_chunks
):
    """k nearest centres of each point, searched among its voxel's candidate list.

    Args:
        points: (P, d); centres: (N, d); box_min, cells_per_unit: (d,) float64;
        resolution: voxels per axis; offsets: (V + 1,) int64 and candidates:
        (M,) int32, voxel v's list being candidates[offsets[v]:offsets[v + 1]];
        complete: (V,) bool, False where a list may miss a nearest centre.
        Writes index_out: (P, k) int64, nearest first, equal distances by
        index; found: (P,) bool, False for points outside the box or in an
        incomplete voxel (their rows are left for the caller to fill).
    Distances are computed in float64, like SciPy's k-d tree.
    """
    n_points, dim = points.shape
    k = index_out.shape[1]
    chunk = (n_points + n_chunks - 1) // n_chunks
    for t in prange(n_chunks):
        best_distance = np.empty(k, np.float64)
        best_index = np.empty(k, np.int64)
        for p in range(t * chunk, min(n_points, (t + 1) * chunk)):
            voxel = 0
            inside = True
            for axis in range(dim):
                u = (np.float64(points[p, axis]) - box_min[axis]) * cells_per_unit[axis]
                if not (u >= 0.0 and u <= resolution):  # also rejects NaN
                    inside = False
                    break
                voxel = voxel * resolution + min(np.int64(u), resolution - 1)
            if not inside or not complete[voxel]:
                found[p] = False
                continue
            for j in range(k):
                best_distance[j] = np.inf
                best_index[j] = -1
            last = k - 1
            for m in range(offsets[voxel], offsets[voxel + 1]):
                c = np.int64(candidates[m])
                distance = 0.0
                for axis in range(dim):
                    delta = np.float64(points[p, axis]) - np.float64(centres[c, axis])
                    distance += delta * delta
                if distance < best_distance[last] or (distance == best_distance[last] and c < best_index[last]):
                    j = last
                    while j > 0 and (
                        distance < best_distance[j - 1] or (distance == best_distance[j - 1] and c < best_index[j - 1])
                    ):
                        best_distance[j] = best_distance[j - 1]
                        best_index[j] = best_index[j - 1]
                        j -= 1
                    best_distance[j] = distance
                    best_index[j] = c
            for j in range(k):
                index_out[p, j] = best_index[j]
            found[p] = True


@njit(cache=True, inline="always")
def _march_step(origins, directions, near, far, offset, step_size, box_min, box_max, resolution, occupied, ray, step):
    """(kept, t) of one step of one ray, computed in the same float32 operations,
    in the same order, as ``march`` with ``OccupancyGrid.query`` in PyTorch."""
    t = near[ray] + (np.float32(step) + offset[ray]) * step_size
    if not t < far[ray]:
        return False, t
    cells = np.float32(resolution)
    flat = 0
    for axis in range(3):
        point = origins[ray, axis] + directions[ray, axis] * t
        unit = (point - box_min[axis]) / (box_max[axis] - box_min[axis])
        if not (unit >= 0 and unit <= 1):  # outside the box (or NaN)
            return False, t
        flat = flat * resolution + min(np.int64(unit * cells), resolution - 1)
    return occupied[flat], t


@njit(parallel=True, cache=True)
def march_counts(origins, directions, near, far, offset, step_size, n_steps, box_min, box_max, resolution, occupied, counts):
    """Kept samples per ray: counts (R,) int64.

    Args:
        origins, directions: (R, 3) float32; near, far, offset: (R,) float32;
        step_size: float32; n_steps: steps per ray; box_min, box_max: (3,)
        float32; resolution: cells per axis; occupied: (resolution**3,) bool.
    """
    for ray in prange(origins.shape[0]):
        kept = 0
        for step in range(n_steps):
            if _march_step(origins, directions, near, far, offset, step_size, box_min, box_max, resolution, occupied, ray, step)[0]:
                kept += 1
        counts[ray] = kept


@njit(parallel=True, cache=True)
def march_fill(origins, directions, near, far, offset, step_size, n_steps, box_min, box_max, resolution, occupied, starts,
               ray_index, t_mid):
    """Write the kept samples, packed by ray from ``starts`` (R,) (exclusive
    cumulative counts): ray_index (S,) int64 and t_mid (S,) float32."""
    for ray in prange(origins.shape[0]):
        slot = starts[ray]
        for step in range(n_steps):
            kept, t = _march_step(origins, directions, near, far, offset, step_size, box_min, box_max, resolution, occupied,
                                  ray, step)
            if kept:
                ray_index[slot] = ray
                t_mid[slot] = t
                slot += 1
