"""Fused CPU kernels compiled at run time by Numba (LLVM, shipped in its wheel:
no C compiler is needed). Imported lazily by :func:`rbfield.ops.numba_kernels`.

Each kernel works on NumPy views of contiguous CPU tensors and is checked
against the PyTorch twin in ``tests/test_rbf.py``.
"""

import numpy as np
from numba import njit, prange


@njit(cache=True, inline="always")
def _chunk_range(t, n_items, n_chunks):
    """(start, stop) of chunk t when n_items are split into n_chunks ranges of
    ceil(n_items / n_chunks) (the last ones shorter or empty)."""
    size = (n_items + n_chunks - 1) // n_chunks
    return t * size, min(n_items, (t + 1) * size)


@njit(cache=True, inline="always")
def _gathered_sums(index, sin_table, cos_table, weights, p, sum_sin, sum_cos):
    """sum_sin[c] = sum_k w[i_pk, c] sin_pkc and sum_cos[c] likewise, for point p."""
    for c in range(weights.shape[1]):
        sum_sin[c] = 0.0
        sum_cos[c] = 0.0
    for j in range(index.shape[1]):
        row = index[p, j]
        for c in range(weights.shape[1]):
            w = weights[row, c]
            sum_sin[c] += w * sin_table[p, j, c]
            sum_cos[c] += w * cos_table[p, j, c]


@njit(parallel=True, cache=True)
def compose_forward(index, sin_table, cos_table, weights, cos_b, sin_b, out, n_chunks):
    """out[p, c] = cos b_c * sum_k w[i_pk, c] sin_pkc + sin b_c * sum_k w[i_pk, c] cos_pkc.

    Args:
        index: (P, k) int64; sin_table, cos_table: (P, k, C); weights: (N, C);
        cos_b, sin_b: (C,). Writes out: (P, C).
    """
    n_points, channels = out.shape
    for t in prange(n_chunks):
        sum_sin = np.empty(channels, out.dtype)
        sum_cos = np.empty(channels, out.dtype)
        for p in range(*_chunk_range(t, n_points, n_chunks)):
            _gathered_sums(index, sin_table, cos_table, weights, p, sum_sin, sum_cos)
            for c in range(channels):
                out[p, c] = sum_sin[c] * cos_b[c] + sum_cos[c] * sin_b[c]


@njit(parallel=True, cache=True)
def compose_backward(index, sin_table, cos_table, weights, grad_out, cos_b, sin_b, n_chunks):
    """Gradients of :func:`compose_forward` for upstream grad_out (P, C):
    (d loss / d weights (N, C), d loss / d b (C,)).

    One pass over the tables scatters, per kernel row, S[row, c] = sum of
    grad_out[p, c] sin_pkc and T[row, c] = sum of grad_out[p, c] cos_pkc over
    the (p, k) that use the row. Then d loss / d w = cos b S + sin b T and
    d loss / d b_c = sum over rows of w (cos b_c T - sin b_c S). Each of
    n_chunks point ranges accumulates into its own buffers (no write races, a
    fixed summation order), then the buffers are summed.
    """
    n_points, channels = grad_out.shape
    n_kernels = weights.shape[0]
    partial_sin = np.zeros((n_chunks, n_kernels, channels), dtype=grad_out.dtype)
    partial_cos = np.zeros((n_chunks, n_kernels, channels), dtype=grad_out.dtype)
    for t in prange(n_chunks):
        for p in range(*_chunk_range(t, n_points, n_chunks)):
            for j in range(index.shape[1]):
                row = index[p, j]
                for c in range(channels):
                    partial_sin[t, row, c] += grad_out[p, c] * sin_table[p, j, c]
                    partial_cos[t, row, c] += grad_out[p, c] * cos_table[p, j, c]
    by_sin, by_cos = partial_sin.sum(axis=0), partial_cos.sum(axis=0)
    grad_weights = np.empty_like(by_sin)
    grad_phase = np.zeros(channels, dtype=grad_out.dtype)
    for row in range(n_kernels):
        for c in range(channels):
            grad_weights[row, c] = cos_b[c] * by_sin[row, c] + sin_b[c] * by_cos[row, c]
            grad_phase[c] += weights[row, c] * (cos_b[c] * by_cos[row, c] - sin_b[c] * by_sin[row, c])
    return grad_weights, grad_phase


@njit(cache=True)
def _pairs_by_row(index, n_kernels):
    """A counting sort of the (point, neighbour) pairs by the kernel row they use.

    Returns:
        offsets (N + 1,) int64: the pairs of row r are order[offsets[r]:offsets[r + 1]];
        order (P * k,) int64: pair numbers p * k + j, ascending within a row.
    """
    flat = index.ravel()
    offsets = np.zeros(n_kernels + 1, np.int64)
    for pair in range(flat.size):
        offsets[flat[pair] + 1] += 1
    for row in range(n_kernels):
        offsets[row + 1] += offsets[row]
    fill = offsets[:-1].copy()
    order = np.empty(flat.size, np.int64)
    for pair in range(flat.size):
        row = flat[pair]
        order[fill[row]] = pair
        fill[row] += 1
    return offsets, order


@njit(parallel=True, cache=True)
def compose_backward_by_row(index, sin_table, cos_table, weights, grad_out, cos_b, sin_b, n_chunks):
    """:func:`compose_backward` for a batch that touches few of many kernels (N > P * k).

    The pairs are counting-sorted by row; each chunk owns a range of rows with about P * k /
    n_chunks pairs and writes their gradient rows directly. Beside the (N, C) gradient it needs
    O(N + P k) memory and time, against the 2 n_chunks (N, C) buffers of :func:`compose_backward`
    (1.4 GB, and 0.7 GB of sums, at 2.7 million kernels of 32 channels on 2 threads). Per row, the pairs are summed
    in ascending pair order, whatever n_chunks is.
    """
    n_kernels, channels = weights.shape
    n_neighbours = index.shape[1]
    offsets, order = _pairs_by_row(index, n_kernels)
    bounds = np.searchsorted(offsets, np.linspace(0, order.size, n_chunks + 1))
    bounds[0], bounds[-1] = 0, n_kernels
    grad_weights = np.zeros((n_kernels, channels), dtype=grad_out.dtype)
    partial_phase = np.zeros((n_chunks, channels), dtype=grad_out.dtype)
    for t in prange(n_chunks):
        by_sin = np.empty(channels, grad_out.dtype)
        by_cos = np.empty(channels, grad_out.dtype)
        for row in range(bounds[t], bounds[t + 1]):
            if offsets[row] == offsets[row + 1]:
                continue
            by_sin[:] = 0.0
            by_cos[:] = 0.0
            for position in range(offsets[row], offsets[row + 1]):
                p, j = divmod(order[position], n_neighbours)
                for c in range(channels):
                    by_sin[c] += grad_out[p, c] * sin_table[p, j, c]
                    by_cos[c] += grad_out[p, c] * cos_table[p, j, c]
            for c in range(channels):
                grad_weights[row, c] = cos_b[c] * by_sin[c] + sin_b[c] * by_cos[c]
                partial_phase[t, c] += weights[row, c] * (cos_b[c] * by_cos[c] - sin_b[c] * by_sin[c])
    return grad_weights, partial_phase.sum(axis=0)


#: Points per block of the grid kernels: a block's corner rows and weights
#: (8 x 512 x 12 bytes in 3-D) and its output rows stay in L1/L2.
GRID_BLOCK = 512


@njit(cache=True, inline="always")
def _wrap_rows(rows, n_corners, n, size, inverse_size):
    """rows[:n_corners, :n] %= size, for 0 <= row < 2**53, without a 64-bit
    division: the float quotient is off by at most one."""
    for corner in range(n_corners):
        for i in range(n):
            row = rows[corner, i]
            row -= np.int64(row * inverse_size) * size
            row += size if row < 0 else 0
            row -= size if row >= size else 0
            rows[corner, i] = row


@njit(cache=True, inline="always")
def _corner_block(
    x, start, n, level, resolution_floats, one, resolutions, table_sizes, inverse_sizes, hashed, primes, rows, weights
):
    """Rows (within the level) and d-linear weights of the 2^d cell corners of
    points x[start:start + n], for d = 2 or 3, as in the PyTorch path.

    Along each axis ``cell = min(floor(x N), N - 1)`` and ``frac = x N - cell``,
    in x's dtype (``one`` is 1 in that dtype: a literal 1 would promote float32
    arithmetic to float64). Corner c has the upper vertex along axis a where bit
    a of c is set. Hashed levels XOR ``vertex * prime`` over the axes and wrap
    by the level's size; dense levels index ``sum_a vertex_a (N + 1)^a``.

    Writes rows: (2^d, GRID_BLOCK) int64 and weights: (2^d, GRID_BLOCK) in x's
    dtype, columns :n. The loops are plain arithmetic over the block, which
    LLVM vectorises.
    """
    dim = x.shape[1]
    resolution_float = resolution_floats[level]
    top = resolution_float - one
    is_hashed = hashed[level]
    side = resolutions[level] + 1
    step_u = primes[0] if is_hashed else 1
    step_v = primes[1] if is_hashed else side
    step_w = (primes[2] if is_hashed else side * side) if dim == 3 else 0
    for i in range(n):
        point = np.uint64(start + i)
        position_u = x[point, 0] * resolution_float
        position_v = x[point, 1] * resolution_float
        lower_u = min(np.floor(position_u), top)
        lower_v = min(np.floor(position_v), top)
        frac_u, frac_v = position_u - lower_u, position_v - lower_v
        low_u, low_v = one - frac_u, one - frac_v
        u0, v0 = np.int64(lower_u) * step_u, np.int64(lower_v) * step_v
        u1, v1 = u0 + step_u, v0 + step_v
        if dim == 2:
            weights[0, i] = low_u * low_v
            weights[1, i] = frac_u * low_v
            weights[2, i] = low_u * frac_v
            weights[3, i] = frac_u * frac_v
            if is_hashed:
                rows[0, i], rows[1, i], rows[2, i], rows[3, i] = u0 ^ v0, u1 ^ v0, u0 ^ v1, u1 ^ v1
            else:
                rows[0, i], rows[1, i], rows[2, i], rows[3, i] = u0 + v0, u1 + v0, u0 + v1, u1 + v1
        else:
            position_w = x[point, 2] * resolution_float
            lower_w = min(np.floor(position_w), top)
            frac_w = position_w - lower_w
            low_w = one - frac_w
            w0 = np.int64(lower_w) * step_w
            w1 = w0 + step_w
            uv00, uv10, uv01, uv11 = low_u * low_v, frac_u * low_v, low_u * frac_v, frac_u * frac_v
            weights[0, i], weights[1, i], weights[2, i], weights[3, i] = (
                uv00 * low_w,
                uv10 * low_w,
                uv01 * low_w,
                uv11 * low_w,
            )
            weights[4, i], weights[5, i], weights[6, i], weights[7, i] = (
                uv00 * frac_w,
                uv10 * frac_w,
                uv01 * frac_w,
                uv11 * frac_w,
            )
            if is_hashed:
                rows[0, i], rows[1, i], rows[2, i], rows[3, i] = u0 ^ v0 ^ w0, u1 ^ v0 ^ w0, u0 ^ v1 ^ w0, u1 ^ v1 ^ w0
                rows[4, i], rows[5, i], rows[6, i], rows[7, i] = u0 ^ v0 ^ w1, u1 ^ v0 ^ w1, u0 ^ v1 ^ w1, u1 ^ v1 ^ w1
            else:
                rows[0, i], rows[1, i], rows[2, i], rows[3, i] = u0 + v0 + w0, u1 + v0 + w0, u0 + v1 + w0, u1 + v1 + w0
                rows[4, i], rows[5, i], rows[6, i], rows[7, i] = u0 + v0 + w1, u1 + v0 + w1, u0 + v1 + w1, u1 + v1 + w1
    if is_hashed:
        _wrap_rows(rows, 2**dim, n, table_sizes[level], inverse_sizes[level])


# The gathers and scatters below index with unsigned integers: Numba adds a
# negative-index wrap-around to every signed index, which cost 10-15 % here.
# Two features per level (the instant-ngp layout) get their own loops that
# keep both sums in registers; other counts go feature by feature.


@njit(cache=True, inline="always")
def _gather_feature(table, base, rows, weights, n_corners, start, n, f, column, out):
    """out[start + i, column] = sum_c weights[c, i] * table[base + rows[c, i], f]
    for i < n (rows and weights as written by :func:`_corner_block`)."""
    for i in range(n):
        total = weights[0, i] * table[np.uint64(base + rows[0, i]), f]
        for corner in range(1, n_corners):
            total += weights[corner, i] * table[np.uint64(base + rows[corner, i]), f]
        out[np.uint64(start + i), column] = total


@njit(cache=True, inline="always")
def _gather_two_features(table, base, rows, weights, n_corners, start, n, level, out):
    """:func:`_gather_feature` for features 0 and 1 of a (R, 2) table at once,
    into columns 2 level and 2 level + 1; same summation order."""
    for i in range(n):
        row, weight = np.uint64(base + rows[0, i]), weights[0, i]
        total_0, total_1 = weight * table[row, 0], weight * table[row, 1]
        for corner in range(1, n_corners):
            row, weight = np.uint64(base + rows[corner, i]), weights[corner, i]
            total_0 += weight * table[row, 0]
            total_1 += weight * table[row, 1]
        point = np.uint64(start + i)
        out[point, 2 * level] = total_0
        out[point, 2 * level + 1] = total_1


@njit(cache=True, inline="always")
def _scatter_feature(grad_out, base, rows, weights, n_corners, start, n, f, column, grad_table):
    """grad_table[base + rows[c, i], f] += weights[c, i] * grad_out[start + i, column]
    for i < n, point by point."""
    for i in range(n):
        upstream = grad_out[np.uint64(start + i), column]
        for corner in range(n_corners):
            grad_table[np.uint64(base + rows[corner, i]), f] += weights[corner, i] * upstream


@njit(cache=True, inline="always")
def _scatter_two_features(grad_out, base, rows, weights, n_corners, start, n, level, grad_table):
    """:func:`_scatter_feature` for features 0 and 1 of a (R, 2) table at once."""
    for i in range(n):
        point = np.uint64(start + i)
        upstream_0, upstream_1 = grad_out[point, 2 * level], grad_out[point, 2 * level + 1]
        for corner in range(n_corners):
            row, weight = np.uint64(base + rows[corner, i]), weights[corner, i]
            grad_table[row, 0] += weight * upstream_0
            grad_table[row, 1] += weight * upstream_1


@njit(parallel=True, cache=True)
def grid_forward(
    x, table, resolution_floats, one, resolutions, offsets, table_sizes, inverse_sizes, hashed, primes, out, n_chunks
):
    """d-linear multiresolution grid interpolation (d = 2 or 3), one pass, no
    temporaries beyond a block's corners.

    Args:
        x: (P, d) points clamped to [0, 1]; table: (R, F) rows of all levels;
        resolution_floats: (L,) resolutions in x's dtype; one: 1 in x's dtype;
        resolutions, offsets, table_sizes: (L,) int64; inverse_sizes: (L,)
        float64, 1 / table_sizes; hashed: (L,) bool; primes: (d,) int64.
        Writes out: (P, L * F), level-major.
    """
    n_points, dim = x.shape
    n_corners, n_features = 2**dim, table.shape[1]
    n_blocks = (n_points + GRID_BLOCK - 1) // GRID_BLOCK
    for t in prange(n_chunks):
        rows = np.empty((n_corners, GRID_BLOCK), np.int64)
        weights = np.empty((n_corners, GRID_BLOCK), x.dtype)
        for block in range(*_chunk_range(t, n_blocks, n_chunks)):
            start = block * GRID_BLOCK
            n = min(n_points - start, GRID_BLOCK)
            for level in range(resolutions.shape[0]):
                _corner_block(
                    x,
                    start,
                    n,
                    level,
                    resolution_floats,
                    one,
                    resolutions,
                    table_sizes,
                    inverse_sizes,
                    hashed,
                    primes,
                    rows,
                    weights,
                )
                if n_features == 2:
                    _gather_two_features(table, offsets[level], rows, weights, n_corners, start, n, level, out)
                else:
                    for f in range(n_features):
                        _gather_feature(
                            table, offsets[level], rows, weights, n_corners, start, n, f, level * n_features + f, out
                        )


@njit(parallel=True, cache=True)
def grid_table_grad(
    x, resolution_floats, one, resolutions, offsets, table_sizes, inverse_sizes, hashed, primes, grad_out, grad_table
):
    """d loss / d table, accumulated into the zeroed grad_table (R, F); the other
    arguments as in :func:`grid_forward`, grad_out (P, L * F).

    Levels own disjoint row ranges, so threads split the work by level: no
    write races and a fixed summation order (deterministic).
    """
    n_points, dim = x.shape
    n_corners, n_features = 2**dim, grad_table.shape[1]
    for level in prange(resolutions.shape[0]):
        rows = np.empty((n_corners, GRID_BLOCK), np.int64)
        weights = np.empty((n_corners, GRID_BLOCK), x.dtype)
        base = offsets[level]
        for start in range(0, n_points, GRID_BLOCK):
            n = min(n_points - start, GRID_BLOCK)
            _corner_block(
                x,
                start,
                n,
                level,
                resolution_floats,
                one,
                resolutions,
                table_sizes,
                inverse_sizes,
                hashed,
                primes,
                rows,
                weights,
            )
            if n_features == 2:
                _scatter_two_features(grad_out, base, rows, weights, n_corners, start, n, level, grad_table)
            else:
                for f in range(n_features):
                    _scatter_feature(
                        grad_out, base, rows, weights, n_corners, start, n, f, level * n_features + f, grad_table
                    )


@njit(parallel=True, cache=True)
def voxels_of_points(points, box_min, cells_per_unit, resolution, complete, voxel_out, n_chunks):
    """Candidate-grid voxel of each point, or -1 where the grid cannot answer.

    Args:
        points: (P, d); box_min, cells_per_unit: (d,) float64; resolution:
        voxels per axis; complete: (V,) bool, False where a voxel's list may
        miss a nearest centre.
        Writes voxel_out: (P,) int64, row-major voxel index, or -1 for points
        outside the box (or NaN) and points in incomplete voxels.
    """
    n_points, dim = points.shape
    for t in prange(n_chunks):
        for p in range(*_chunk_range(t, n_points, n_chunks)):
            voxel = 0
            for axis in range(dim):
                u = (np.float64(points[p, axis]) - box_min[axis]) * cells_per_unit[axis]
                if not (u >= 0.0 and u <= resolution):  # also rejects NaN
                    voxel = -1
                    break
                voxel = voxel * resolution + min(np.int64(u), resolution - 1)
            voxel_out[p] = voxel if voxel >= 0 and complete[voxel] else -1


@njit(cache=True)
def order_by_voxel(voxel, n_voxels, order):
    """Counting sort: fills order[:n] with the points whose voxel is >= 0,
    grouped by voxel (ascending), and returns n. voxel: (P,) int64;
    order: (P,) int64."""
    starts = np.zeros(n_voxels + 1, np.int64)
    for p in range(len(voxel)):
        if voxel[p] >= 0:
            starts[voxel[p] + 1] += 1
    for v in range(n_voxels):
        starts[v + 1] += starts[v]
    for p in range(len(voxel)):
        v = voxel[p]
        if v >= 0:
            order[starts[v]] = p
            starts[v] += 1
    return starts[n_voxels]


@njit(parallel=True, cache=True)
def nearest_in_voxel_order(points, centres, order, n_ordered, voxel, offsets, candidates, longest, index_out, n_chunks):
    """k nearest centres of each point, searched among its voxel's candidate list.

    Points are visited voxel by voxel (``order``), so that each list and its
    centres are read once per run of points rather than once per point.

    Args:
        points: (P, d); centres: (N, d) float64; order: (P,) int64 whose first
        n_ordered entries are the points to answer, grouped by voxel;
        voxel: (P,) int64 voxel of each point; offsets: (V + 1,) int64 and
        candidates: (M,) int32, voxel v's list being
        candidates[offsets[v]:offsets[v + 1]], at least k long; longest: the
        longest list.
        Writes index_out[order[:n_ordered]]: (k,) int64 rows, nearest first,
        equal distances by index; other rows are left for the caller.
    Distances are computed in float64, like SciPy's k-d tree.
    """
    dim = points.shape[1]
    k = index_out.shape[1]
    for t in prange(n_chunks):
        listed = np.empty((dim, longest), np.float64)
        listed_index = np.empty(longest, np.int64)
        distance = np.empty(longest, np.float64)
        kept_distance = np.empty(longest, np.float64)
        kept_index = np.empty(longest, np.int64)
        current = -1
        n = 0
        for i in range(*_chunk_range(t, n_ordered, n_chunks)):
            p = order[i]
            if voxel[p] != current:
                current = voxel[p]
                start = offsets[current]
                n = offsets[current + 1] - start
                for m in range(n):
                    c = np.int64(candidates[start + m])
                    listed_index[m] = c
                    for axis in range(dim):
                        listed[axis, m] = centres[c, axis]
            distance[:n] = 0.0
            for axis in range(dim):
                x = np.float64(points[p, axis])
                for m in range(n):
                    delta = x - listed[axis, m]
                    distance[m] += delta * delta
            # The k-th nearest is no farther than the farthest of any k candidates.
            threshold = 0.0
            for m in range(k):
                threshold = max(threshold, distance[m])
            kept = 0
            for m in range(n):
                kept_distance[kept] = distance[m]
                kept_index[kept] = listed_index[m]
                kept += distance[m] <= threshold
            # Rank each survivor by (distance, index); branch-free, as the
            # survivors are few (about k + 2 on an SDF field).
            for q in range(kept):
                d, c = kept_distance[q], kept_index[q]
                rank = 0
                for r in range(kept):
                    rank += (kept_distance[r] < d) | ((kept_distance[r] == d) & (kept_index[r] < c))
                if rank < k:
                    index_out[p, rank] = c


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
def march_counts(
    origins, directions, near, far, offset, step_size, n_steps, box_min, box_max, resolution, occupied, counts
):
    """Kept samples per ray: counts (R,) int64.

    Args:
        origins, directions: (R, 3) float32; near, far, offset: (R,) float32;
        step_size: float32; n_steps: steps per ray; box_min, box_max: (3,)
        float32; resolution: cells per axis; occupied: (resolution**3,) bool.
    """
    for ray in prange(origins.shape[0]):
        kept = 0
        for step in range(n_steps):
            if _march_step(
                origins, directions, near, far, offset, step_size, box_min, box_max, resolution, occupied, ray, step
            )[0]:
                kept += 1
        counts[ray] = kept


@njit(parallel=True, cache=True)
def march_fill(
    origins,
    directions,
    near,
    far,
    offset,
    step_size,
    n_steps,
    box_min,
    box_max,
    resolution,
    occupied,
    starts,
    ray_index,
    t_mid,
):
    """Write the kept samples, packed by ray from ``starts`` (R,) (exclusive
    cumulative counts): ray_index (S,) int64 and t_mid (S,) float32."""
    for ray in prange(origins.shape[0]):
        slot = starts[ray]
        for step in range(n_steps):
            kept, t = _march_step(
                origins, directions, near, far, offset, step_size, box_min, box_max, resolution, occupied, ray, step
            )
            if kept:
                ray_index[slot] = ray
                t_mid[slot] = t
                slot += 1
