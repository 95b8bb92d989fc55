"""A ReLU MLP run over row chunks that stay in the CPU's cache (fast path of
:class:`rbfield.decoders.mlp.MLP` without a sine-composition layer).

Run layer by layer over a whole batch, every hidden activation (P, width)
goes to memory and back several times: the ReLU, its backward mask and the
bias gradients each stream tens of MB per step. Here each chunk of rows goes
through all layers while it is in cache, forward and backward. The hidden
activations (after ReLU) are kept for the backward pass, as autograd would.

Values and gradients equal the plain layers' up to float rounding (tested in
``tests/test_training.py``). Higher derivatives (``create_graph=True``)
recompute the plain layers, so they work too, at the plain speed.
"""

from __future__ import annotations

import torch

CHUNK_BYTES = 2**20  # one hidden activation chunk: 1 MiB, well inside a core's L2


def chunk_rows(width: int, element_bytes: int) -> int:
    """Rows per chunk so that a (rows, width) activation takes about CHUNK_BYTES."""
    return max(256, CHUNK_BYTES // (width * element_bytes))


def plain_relu_mlp(x: torch.Tensor, weights: list[torch.Tensor], biases: list[torch.Tensor]) -> torch.Tensor:
    """The reference: linear layers with ReLU between them. x (P, in) -> (P, out)."""
    h = x
    for i, (weight, bias) in enumerate(zip(weights, biases)):
        h = torch.nn.functional.linear(h, weight, bias)
        if i < len(weights) - 1:
            h = torch.relu(h)
    return h


class _ChunkedReluMLP(torch.autograd.Function):
    """Inputs: x (P, in), then weight (out_i, in_i) and bias (out_i,) per layer."""

    @staticmethod
    def forward(ctx, x, *parameters):
        weights, biases = parameters[0::2], parameters[1::2]
        n_rows, last = x.shape[0], len(weights) - 1
        rows = chunk_rows(max(w.shape[0] for w in weights), x.element_size())
        hidden = [x.new_empty(n_rows, w.shape[0]) for w in weights[:-1]]
        out = x.new_empty(n_rows, weights[-1].shape[0])
        for start in range(0, n_rows, rows):
            chunk = slice(start, start + rows)
            h = x[chunk]
            for i, (weight, bias) in enumerate(zip(weights, biases)):
                target = out[chunk] if i == last else hidden[i][chunk]
                torch.addmm(bias, h, weight.t(), out=target)
                if i < last:
                    target.clamp_min_(0.0)
                h = target
        ctx.save_for_backward(x, *weights, *biases, *hidden)
        ctx.n_layers, ctx.rows = len(weights), rows
        return out

    @staticmethod
    def backward(ctx, grad_out):
        n = ctx.n_layers
        saved = ctx.saved_tensors
        x, weights, biases, hidden = saved[0], saved[1 : 1 + n], saved[1 + n : 1 + 2 * n], saved[1 + 2 * n :]
        if torch.is_grad_enabled():  # create_graph=True: differentiate the plain layers instead
            return _plain_gradients(ctx, x, weights, biases, grad_out)
        grad_weights = [torch.zeros_like(w) for w in weights]
        grad_biases = [torch.zeros_like(b) for b in biases]
        grad_x = torch.empty_like(x) if ctx.needs_input_grad[0] else None
        grad_out = grad_out.contiguous()
        for start in range(0, x.shape[0], ctx.rows):
            chunk = slice(start, start + ctx.rows)
            g = grad_out[chunk]
            for i in range(n - 1, -1, -1):
                layer_input = hidden[i - 1][chunk] if i > 0 else x[chunk]
                grad_weights[i].addmm_(g.t(), layer_input)
                grad_biases[i].add_(g.sum(0))
                if i > 0:
                    g = torch.ops.aten.threshold_backward(torch.mm(g, weights[i]), layer_input, 0.0)
                elif grad_x is not None:
                    torch.mm(g, weights[0], out=grad_x[chunk])
        return (grad_x, *(t for pair in zip(grad_weights, grad_biases) for t in pair))


def _plain_gradients(ctx, x, weights, biases, grad_out):
    """Gradients through the plain layers, recorded for higher derivatives."""
    inputs = (x, *(t for pair in zip(weights, biases) for t in pair))
    wanted = [t for t, needed in zip(inputs, ctx.needs_input_grad) if needed]
    grads = iter(torch.autograd.grad(plain_relu_mlp(x, weights, biases), wanted, grad_out, create_graph=True))
    return tuple(next(grads) if needed else None for needed in ctx.needs_input_grad)


def chunked_relu_mlp(x: torch.Tensor, weights: list[torch.Tensor], biases: list[torch.Tensor]) -> torch.Tensor:
    """:func:`plain_relu_mlp`, run chunk by chunk. x (P, in) contiguous on the CPU."""
    return _ChunkedReluMLP.apply(x, *(t for pair in zip(weights, biases) for t in pair))
