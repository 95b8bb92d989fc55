"""Sinusoid composition of RBF features: reference and fast paths.

Both compute, for points p, neighbours k and channels c::

    out[p, c] = sum_k weights[index[p, k], c] * sin(values[p, k] * m[c] + b[c])

The fast path applies when ``values`` (and so ``angle = values * m``) are fixed
from step to step, which is the case while training on a fixed set of points
with frozen RBF geometry. Then, by ``sin(a + b) = sin a cos b + cos a sin b``,
the per-step work is two weighted gathers of precomputed ``sin a`` and
``cos a`` tables and no transcendental functions, with a hand-written
backward. On the CPU, fused Numba kernels do it in one pass over the tables
each way, with no (P, k, C) temporaries: the backward scatters the upstream
gradient times ``sin a`` and times ``cos a`` per RBF, and forms both the
weight and the phase gradient from those sums. Elsewhere, or without Numba,
PyTorch ops do it (the weight gradient is then one ``index_add_``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rbfield.ops import numba_kernels


def compose_reference(
    index: torch.Tensor, values: torch.Tensor, weights: torch.Tensor, frequencies: torch.Tensor, phase: torch.Tensor
) -> torch.Tensor:
    """Plain autograd version.

    Args:
        index: (P, k) int64 kernel indices.
        values: (P, k) kernel values (normalized or not).
        weights: (N, C) kernel features.
        frequencies: (C,) m.
        phase: (C,) b.

    Returns:
        (P, C) composed features.
    """
    basis = torch.sin(values[..., None] * frequencies + phase)
    return (F.embedding(index, weights) * basis).sum(1)


def angle_tables(values: torch.Tensor, frequencies: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Precompute (sin(values * m), cos(values * m)), each (P, k, C)."""
    angle = values.detach()[..., None] * frequencies
    return torch.sin(angle), torch.cos(angle)


def _kernel_inputs_ok(*tensors: torch.Tensor) -> bool:
    return all(t.device.type == "cpu" and t.is_contiguous() for t in tensors) and tensors[1].dtype in (
        torch.float32,
        torch.float64,
    )


class _ComposeFixedAngles(torch.autograd.Function):
    @staticmethod
    def forward(ctx, index, sin_table, cos_table, weights, phase):
        cos_b, sin_b = torch.cos(phase.detach()), torch.sin(phase.detach())
        kernels = numba_kernels()
        weights_same = weights.detach().to(sin_table.dtype)
        ctx.use_kernels = kernels is not None and _kernel_inputs_ok(index, sin_table, cos_table, weights_same)
        if ctx.use_kernels:
            out = torch.empty(index.shape[0], weights.shape[1], dtype=sin_table.dtype)
            kernels.compose_forward(
                index.numpy(),
                sin_table.numpy(),
                cos_table.numpy(),
                weights_same.numpy(),
                cos_b.numpy(),
                sin_b.numpy(),
                out.numpy(),
                _chunks(),
            )
            ctx.save_for_backward(index, sin_table, cos_table, weights_same, cos_b, sin_b)
        else:
            gathered = F.embedding(index, weights.detach())  # (P, k, C)
            sum_sin = (gathered * sin_table).sum(1)  # (P, C)
            sum_cos = (gathered * cos_table).sum(1)
            out = sum_sin * cos_b + sum_cos * sin_b
            ctx.save_for_backward(index, sin_table, cos_table, sum_sin, sum_cos, cos_b, sin_b)
        ctx.n_kernels = weights.shape[0]
        return out

    @staticmethod
    def backward(ctx, grad_out):
        if ctx.use_kernels:
            index, sin_table, cos_table, weights, cos_b, sin_b = ctx.saved_tensors
            grad = grad_out.contiguous().to(sin_table.dtype)
            kernels = numba_kernels()
            few_rows_touched = weights.shape[0] > index.numel()
            backward = kernels.compose_backward_by_row if few_rows_touched else kernels.compose_backward
            grad_weights, grad_phase = backward(
                index.numpy(),
                sin_table.numpy(),
                cos_table.numpy(),
                weights.numpy(),
                grad.numpy(),
                cos_b.numpy(),
                sin_b.numpy(),
                _chunks(),
            )
            return None, None, None, torch.from_numpy(grad_weights), torch.from_numpy(grad_phase)
        index, sin_table, cos_table, sum_sin, sum_cos, cos_b, sin_b = ctx.saved_tensors
        grad_weights = grad_phase = None
        if ctx.needs_input_grad[3]:
            rows = (grad_out * cos_b)[:, None, :] * sin_table
            rows.addcmul_((grad_out * sin_b)[:, None, :], cos_table)
            grad_weights = torch.zeros(ctx.n_kernels, rows.shape[-1], dtype=rows.dtype, device=rows.device)
            grad_weights.index_add_(0, index.reshape(-1), rows.reshape(-1, rows.shape[-1]))
        if ctx.needs_input_grad[4]:
            grad_phase = (grad_out * (sum_cos * cos_b - sum_sin * sin_b)).sum(0)
        return None, None, None, grad_weights, grad_phase


def _chunks() -> int:
    """Point ranges for the kernels: one per Numba thread."""
    import numba

    return numba.get_num_threads()


def compose_fixed_angles(
    index: torch.Tensor, sin_table: torch.Tensor, cos_table: torch.Tensor, weights: torch.Tensor, phase: torch.Tensor
) -> torch.Tensor:
    """Fast path: same result as :func:`compose_reference` given the tables of
    :func:`angle_tables`; differentiable in ``weights`` and ``phase`` only."""
    return _ComposeFixedAngles.apply(index, sin_table, cos_table, weights, phase)
