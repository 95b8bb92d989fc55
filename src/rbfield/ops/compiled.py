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
