"""An MLP run over row chunks that stay in the CPU's cache (the CPU fast path
of :class:`rbfield.decoders.mlp.MLP`).

The MLP: linear layers with ReLU between them, or NeuRBF's sine composition
``h + sin(h * m0)`` in place of the first ReLU.

Run layer by layer over a whole batch, every hidden activation (P, width)
goes to memory and back several times: the ReLU, its backward mask and the
bias gradients each stream tens of MB per step. Here each chunk of rows goes
through all layers while it is in cache, forward and backward. The hidden
activations (and, for a sine-composition layer, its input) are kept for the
backward pass, as autograd would.

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


def plain_mlp(
    x: torch.Tensor, weights: list[torch.Tensor], biases: list[torch.Tensor], first_frequencies: torch.Tensor | None
) -> torch.Tensor:
    """The reference, layer by layer. x (P, in) -> (P, out); weight i (out_i,
    in_i), bias i (out_i,); first_frequencies (width,) m0 of the sine
    composition after the first layer, or None for a ReLU there."""
    h = x
    for i, (weight, bias) in enumerate(zip(weights, biases)):
        h = torch.nn.functional.linear(h, weight, bias)
        if i == len(weights) - 1:
            break
        h = h + torch.sin(h * first_frequencies) if i == 0 and first_frequencies is not None else torch.relu(h)
    return h


class _ChunkedMLP(torch.autograd.Function):
    """Inputs: x (P, in), first_frequencies (width,) or None, then weight
    (out_i, in_i) and bias (out_i,) per layer."""

    @staticmethod
    def forward(ctx, x, first_frequencies, *parameters):
        weights, biases = parameters[0::2], parameters[1::2]
        n_rows, last = x.shape[0], len(weights) - 1
        rows = chunk_rows(max(w.shape[0] for w in weights), x.element_size())
        hidden = [x.new_empty(n_rows, w.shape[0]) for w in weights[:-1]]
        sine = first_frequencies is not None and last > 0
        first_input = x.new_empty(n_rows, weights[0].shape[0]) if sine else None  # h before the sine composition
        out = x.new_empty(n_rows, weights[-1].shape[0])
        for start in range(0, n_rows, rows):
            chunk = slice(start, start + rows)
            h = x[chunk]
            for i, (weight, bias) in enumerate(zip(weights, biases)):
                target = out[chunk] if i == last else hidden[i][chunk]
                if i == 0 and sine:
                    before = torch.addmm(bias, h, weight.t(), out=first_input[chunk])
                    torch.mul(before, first_frequencies, out=target).sin_().add_(before)
                else:
                    torch.addmm(bias, h, weight.t(), out=target)
                    if i < last:
                        target.clamp_min_(0.0)
                h = target
        ctx.save_for_backward(x, first_frequencies if sine else None, first_input, *weights, *biases, *hidden)
        ctx.n_layers, ctx.rows, ctx.sine = len(weights), rows, sine
        return out

    @staticmethod
    def backward(ctx, grad_out):
        n = ctx.n_layers
        x, frequencies, first_input, *rest = ctx.saved_tensors
        weights, biases, hidden = rest[:n], rest[n : 2 * n], rest[2 * n :]
        if torch.is_grad_enabled():  # create_graph=True: differentiate the plain layers instead
            return _plain_gradients(ctx, x, frequencies, weights, biases, grad_out)
        grad_weights = [torch.zeros_like(w) for w in weights]
        grad_biases = [torch.zeros_like(b) for b in biases]
        grad_x = torch.empty_like(x) if ctx.needs_input_grad[0] else None
        grad_out = grad_out.contiguous()
        ones = x.new_ones(ctx.rows)  # bias gradients as matrix-vector products: sum(0) is far slower
        for start in range(0, x.shape[0], ctx.rows):
            chunk = slice(start, start + ctx.rows)
            g = grad_out[chunk]
            for i in range(n - 1, -1, -1):
                layer_input = hidden[i - 1][chunk] if i > 0 else x[chunk]
                grad_weights[i].addmm_(g.t(), layer_input)
                grad_biases[i].addmv_(g.t(), ones[: g.shape[0]])
                if i == 1 and ctx.sine:  # d(h + sin(h m0))/dh = 1 + m0 cos(h m0)
                    slope = torch.mul(first_input[chunk], frequencies).cos_().mul_(frequencies).add_(1.0)
                    g = torch.mm(g, weights[i]).mul_(slope)
                elif i > 0:  # ReLU backward in place: a fresh output costs a fifth more here
                    g = torch.mm(g, weights[i])
                    torch.ops.aten.threshold_backward.grad_input(g, layer_input, 0.0, grad_input=g)
                elif grad_x is not None:
                    torch.mm(g, weights[0], out=grad_x[chunk])
        return (grad_x, None, *(t for pair in zip(grad_weights, grad_biases) for t in pair))


def _plain_gradients(ctx, x, frequencies, weights, biases, grad_out):
    """Gradients through the plain layers, recorded for higher derivatives."""
    inputs = (x, None, *(t for pair in zip(weights, biases) for t in pair))
    wanted = [t for t, needed in zip(inputs, ctx.needs_input_grad) if needed]
    grads = iter(torch.autograd.grad(plain_mlp(x, weights, biases, frequencies), wanted, grad_out, create_graph=True))
    return tuple(next(grads) if needed else None for needed in ctx.needs_input_grad)


def chunked_mlp(
    x: torch.Tensor, weights: list[torch.Tensor], biases: list[torch.Tensor], first_frequencies: torch.Tensor | None
) -> torch.Tensor:
    """:func:`plain_mlp`, run chunk by chunk. x (P, in) contiguous on the CPU."""
    return _ChunkedMLP.apply(x, first_frequencies, *(t for pair in zip(weights, biases) for t in pair))
