"""Roofline note for one instant-ngp image training step.

Measures, on this machine and thread count:

* matmul throughput: a large float32 ``torch.mm`` (GFLOP/s);
* memory bandwidth: a large float32 copy, counted as bytes read + written (GB/s);
* the step: one full training step of the ``instant-ngp`` image preset on a
  256x256 crop of ``skimage.data.astronaut()`` (all 65,536 pixels per step, as
  the image fits run), forward + backward + Adam, median over repeats.

Then the estimate ``matmul FLOPs / matmul throughput + gather/scatter bytes /
bandwidth`` is set against the measured step time. Counted work:

* matmuls: the decoder's linear layers, forward ``2 P in out`` each, backward
  twice that (input and weight gradients);
* gathers/scatters: the grid's forward reads ``P L 2^d F`` table values and
  writes ``P L F`` features; its backward reads ``P L F`` upstream values and
  reads + writes ``P L 2^d F`` table values; 4 bytes each.

Element-wise work (activations, loss, Adam) is left out of the estimate, so
the ratio says how far the step is from what its matrix products and table
traffic alone would cost. A second estimate replaces the peak matmul rate by
the measured time of the step's own (narrow) matrix products run alone.

    python bench/roofline.py --threads 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from skimage import data

from ops import median_seconds  # bench/ops.py (this script runs from bench/)
from rbfield.encodings.grid import MultiresGrid
from rbfield.fields import build_field
from rbfield.io import atomic_write_bytes
from rbfield.signals.image import ImageSignal, centre_crop
from rbfield.train import TrainConfig, make_adam

FLOAT_BYTES = 4


def matmul_gflops(size: int, repeats: int) -> float:
    """float32 (size x size) @ (size x size) throughput in GFLOP/s."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    return 2 * size**3 / median_seconds(lambda: torch.mm(a, b), repeats) / 1e9


def copy_bandwidth(megabytes: int, repeats: int) -> float:
    """Bytes read + written per second of a large float32 copy, in GB/s."""
    source = torch.randn(megabytes * 2**20 // FLOAT_BYTES)
    target = torch.empty_like(source)
    return 2 * source.numel() * FLOAT_BYTES / median_seconds(lambda: target.copy_(source), repeats) / 1e9


def decoder_flops(field: torch.nn.Module, n_points: int) -> int:
    """Forward + backward matmul FLOPs of the field's linear layers for n_points."""
    forward = sum(
        2 * n_points * m.in_features * m.out_features for m in field.modules() if isinstance(m, torch.nn.Linear)
    )
    return 3 * forward


def decoder_matmul_seconds(field: torch.nn.Module, n_points: int, repeats: int) -> float:
    """Measured seconds of the step's own matrix products, run alone: per linear
    layer the forward (P, in) @ (in, out), the input gradient (P, out) @ (out, in)
    and the weight gradient (out, P) @ (P, in)."""
    operands = []
    for layer in (m for m in field.modules() if isinstance(m, torch.nn.Linear)):
        x, w, g = (
            torch.randn(n_points, layer.in_features),
            torch.randn(layer.in_features, layer.out_features),
            torch.randn(n_points, layer.out_features),
        )
        operands.append((x, w, g))

    def products():
        for x, w, g in operands:
            torch.mm(x, w)
            torch.mm(g, w.t())
            torch.mm(g.t(), x)

    return median_seconds(products, repeats)


def grid_bytes(field: torch.nn.Module, n_points: int) -> int:
    """Table and feature bytes the grid's forward and backward move for n_points."""
    total = 0
    for grid in (m for m in field.modules() if isinstance(m, MultiresGrid)):
        levels, features = len(grid.layout.resolutions), grid.table.shape[1]
        corner_values = n_points * levels * 2**grid.in_dim * features
        feature_values = n_points * levels * features
        total += (corner_values + feature_values) + (feature_values + 2 * corner_values)
    return total * FLOAT_BYTES


def training_step(field, signal):
    """One full-batch training step (forward, backward, Adam as in ``rbfield.fit``) as a closure."""
    settings = TrainConfig()
    optimizer = make_adam(field.param_groups(), settings)
    coords, targets = signal.batch(0, torch.Generator())  # every pixel: the image is smaller than a batch

    def step():
        loss = signal.training_loss(field, coords, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--params", default="128k")
    parser.add_argument("--out", default="bench/results/roofline.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    signal = ImageSignal(centre_crop(data.astronaut(), 256) / 255.0, "astronaut 256x256")
    field = build_field("instant-ngp", signal.spec(), args.params)
    field.train()
    n_points = signal.n_pixels
    step_seconds = median_seconds(training_step(field, signal), args.repeats)
    gflops = matmul_gflops(2048, args.repeats)
    bandwidth = copy_bandwidth(512, args.repeats)
    flops, moved = decoder_flops(field, n_points), grid_bytes(field, n_points)
    matmul_seconds, memory_seconds = flops / (gflops * 1e9), moved / (bandwidth * 1e9)
    estimate = matmul_seconds + memory_seconds
    shaped_seconds = decoder_matmul_seconds(field, n_points, args.repeats)
    shaped_estimate = shaped_seconds + memory_seconds
    result = {
        "threads": args.threads,
        "params": field.param_counts()["trainable"],
        "points": n_points,
        "matmul_gflops": round(gflops, 1),
        "bandwidth_gb_s": round(bandwidth, 1),
        "step_matmul_gflop": round(flops / 1e9, 3),
        "step_grid_mb": round(moved / 1e6, 1),
        "estimate_ms": round(estimate * 1e3, 2),
        "matmul_ms": round(matmul_seconds * 1e3, 2),
        "memory_ms": round(memory_seconds * 1e3, 2),
        "measured_ms": round(step_seconds * 1e3, 2),
        "ratio": round(step_seconds / estimate, 2),
        "step_shaped_matmul_ms": round(shaped_seconds * 1e3, 2),
        "step_shaped_gflops": round(flops / shaped_seconds / 1e9, 1),
        "ratio_to_step_shaped_estimate": round(step_seconds / shaped_estimate, 2),
    }
    print(json.dumps(result, indent=1))
    command = "python bench/roofline.py " + " ".join(sys.argv[1:])
    text = "\n".join(
        [
            f"Command: `{command}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, torch {torch.__version__}, "
            f"{args.threads} thread(s), median of {args.repeats}).",
            "",
            f"- Machine: float32 matmul {gflops:.1f} GFLOP/s (2048x2048 `torch.mm`); copy bandwidth "
            f"{bandwidth:.1f} GB/s (512 MB float32 copy, read + write).",
            f"- Step: instant-ngp image preset, {result['params']:,} trainable parameters, {n_points:,} pixels "
            f"(256x256 astronaut crop, full batch): {flops / 1e9:.3f} GFLOP of matmuls (forward + backward), "
            f"{moved / 1e6:.1f} MB of grid gathers and scatters.",
            f"- Roofline estimate: {matmul_seconds * 1e3:.2f} ms "
            f"(matmuls) + {memory_seconds * 1e3:.2f} ms (grid traffic) "
            f"= {estimate * 1e3:.2f} ms.",
            f"- Measured step (forward + backward + Adam): {step_seconds * 1e3:.2f} ms, "
            f"**{result['ratio']:.2f}x** the estimate.",
            f"- The step's own matrix products (its layer shapes, forward and both gradients), timed alone: "
            f"{shaped_seconds * 1e3:.2f} ms, {result['step_shaped_gflops']:.1f} GFLOP/s: narrow (64-wide) products "
            f"run far below the large-matmul peak. With that figure in place of the peak the estimate is "
            f"{shaped_estimate * 1e3:.2f} ms and the step **{result['ratio_to_step_shaped_estimate']:.2f}x** it.",
            "",
        ]
    )
    atomic_write_bytes(Path(args.out), text.encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
