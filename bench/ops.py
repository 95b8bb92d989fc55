"""Hot-op throughput: each fast path against its reference twin, in one run.

Forward + backward, milliseconds and points per second, median over
``--repeats`` timed repetitions after a warm-up, with the fast/reference
ratio; and one optimizer step (the Adam row). Writes
``bench/results/ops.md``.

    python bench/ops.py --threads 2
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from data_paths import MESHES
from rbfield.decoders.chunked_mlp import plain_mlp
from rbfield.decoders.mlp import MLP
from rbfield.encodings.grid import MultiresGrid, grid_lookup, grid_lookup_reference
from rbfield.fields import build_field, parse_budget
from rbfield.io import atomic_write_bytes
from rbfield.ops.rbf_compose import angle_tables, compose_fixed_angles, compose_reference
from rbfield.signals.radiance import scene_spec
from rbfield.spec import SignalSpec


def median_seconds(run, repeats: int) -> float:
    """Median wall-clock seconds of ``run()`` over ``repeats`` calls after one warm-up."""
    run()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def preset_grid(preset: str, task: str, in_dim: int, budget: str) -> MultiresGrid:
    """The multiresolution grid inside a preset field as the library builds it."""
    if task == "nerf":
        field = build_field(preset, scene_spec(), parse_budget(budget))
    else:
        spec = SignalSpec(task, in_dim, 3 if task == "image" else 1, (512,) * in_dim)
        field = build_field(preset, spec, budget)
    grids = [module for module in field.modules() if isinstance(module, MultiresGrid)]
    with torch.no_grad():
        grids[0].table.uniform_(-1.0, 1.0)
    return grids[0]


def grid_case(grid: MultiresGrid, n_points: int):
    points = torch.rand(n_points, grid.in_dim)
    args = (grid.resolutions, grid.offsets, grid.table_sizes, grid.hashed)

    def make(lookup):
        def run():
            table = grid.table.detach().requires_grad_()
            lookup(points, table, *args).sum().backward()

        return run

    return make(grid_lookup), make(grid_lookup_reference)


def rbf_case(n_points: int, k: int, channels: int, n_kernels: int):
    index = torch.randint(0, n_kernels, (n_points, k))
    values = torch.rand(n_points, k)
    frequencies = 2.0 ** torch.linspace(-3, 12, channels)
    tables = angle_tables(values, frequencies)
    weights = torch.randn(n_kernels, channels)
    phase = torch.zeros(channels)

    def fast():
        w, b = weights.clone().requires_grad_(), phase.clone().requires_grad_()
        compose_fixed_angles(index, *tables, w, b).sum().backward()

    def reference():
        w, b = weights.clone().requires_grad_(), phase.clone().requires_grad_()
        compose_reference(index, values, w, frequencies, b).sum().backward()

    return fast, reference


def mlp_case(n_points: int, in_dim: int, first_layer_frequencies):
    """The 64-wide, 3-layer decoder, forward + backward to its input and weights:
    chunked (the CPU fast path) against the plain layers."""
    torch.manual_seed(0)
    mlp = MLP(in_dim, 3, 64, 3, first_layer_frequencies)
    features = torch.randn(n_points, in_dim)
    parameters = [layer.weight for layer in mlp.layers] + [layer.bias for layer in mlp.layers]

    def make(forward):
        def run():
            x = features.clone().requires_grad_()
            torch.autograd.grad(forward(x).sum(), [x, *parameters])

        return run

    plain = make(lambda x: plain_mlp(x, parameters[:3], parameters[3:], mlp.first_frequencies))
    return make(mlp), plain


def adam_case(n_parameters: int):
    """One Adam step over a table of n_parameters (plus a 64-wide decoder's):
    PyTorch's fused kernel (what rbfield.fit uses) against its per-tensor loop."""

    def make(fused):
        params = [torch.nn.Parameter(torch.randn(n_parameters // 2, 2) * 1e-4), torch.nn.Parameter(torch.randn(64, 64))]
        for p in params:
            p.grad = torch.randn_like(p)
        optimizer = torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.99), eps=1e-15, fused=fused)
        return optimizer.step

    return make(True), make(None)


def neighbour_case(n_points: int, k: int):
    """k-nearest centres of a neurbf SDF field placed on the Stanford bunny, for
    points drawn as in training (surface : near : uniform = 4 : 3 : 1); query
    only (indices have no gradient). The fast index builds its candidate grid in
    the warm-up call, outside the timing."""
    from rbfield.encodings.neighbours import NeighbourIndex
    from rbfield.signals.sdf import MeshSDF
    from rbfield.tasks.sdf import load_normalized

    mesh, _ = load_normalized(MESHES / "bunny00.off")
    signal = MeshSDF(mesh, batch_size=n_points)
    field = build_field("neurbf", signal.spec(), "500k")
    field.initialize(signal)
    centres = field.rbf_encodings()[0].centres.detach()
    points = signal.batch(0, torch.Generator().manual_seed(0))[0].points
    grid_index, tree_index = (
        NeighbourIndex(centres, grid_after_points=0),
        NeighbourIndex(centres, grid_after_points=2**62),
    )
    return (lambda: grid_index.query(points, k)), (lambda: tree_index.query(points, k))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--points", type=int, default=2**16)
    parser.add_argument("--out", default="bench/results/ops.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cases = {
        "grid 2D, instant-ngp image preset at 128k": grid_case(
            preset_grid("instant-ngp", "image", 2, "128k"), args.points
        ),
        "grid 3D, neurbf SDF preset's hash grid at 500k": grid_case(
            preset_grid("neurbf", "sdf", 3, "500k"), args.points
        ),
        "grid 3D, instant-ngp SDF preset at 500k": grid_case(preset_grid("instant-ngp", "sdf", 3, "500k"), args.points),
        "grid 3D, instant-ngp NeRF preset at 1M": grid_case(preset_grid("instant-ngp", "nerf", 3, "1M"), args.points),
        "grid 2D stress, 16 levels x 2, T=19 (64 MB table)": grid_case(
            MultiresGrid(2, 16, 2, 19, 16, 2048), args.points
        ),
        "grid 3D stress, 16 levels x 2, T=19 (49 MB table)": grid_case(
            MultiresGrid(3, 16, 2, 19, 16, 2048), args.points
        ),
        "RBF sinusoid composition (k=4, 32 channels, 4096 RBFs)": rbf_case(args.points, 4, 32, 4096),
        "k-nearest RBF centres (k=8, neurbf SDF field on the bunny, query only)": neighbour_case(args.points, 8),
        "decoder MLP 32-64-64-3, ReLU (instant-ngp image)": mlp_case(args.points, 32, None),
        "decoder MLP 48-64-64-3, sine first layer (neurbf SDF)": mlp_case(args.points, 48, (30.0, 300.0)),
    }
    per_step = {"Adam step over 1M parameters (per step; no points)": adam_case(2**20)}
    rows = [
        "| op | reference (ms) | fast (ms) | reference (Mpts/s) | fast (Mpts/s) | speed-up |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, (fast, reference) in {**cases, **per_step}.items():
        t_fast, t_ref = median_seconds(fast, args.repeats), median_seconds(reference, args.repeats)
        rates = ["-", "-"] if name in per_step else [f"{args.points / t / 1e6:.2f}" for t in (t_ref, t_fast)]
        rows.append(
            f"| {name} | {t_ref * 1e3:.2f} | {t_fast * 1e3:.2f} | {rates[0]} | {rates[1]} | {t_ref / t_fast:.1f}x |"
        )
        print(rows[-1], flush=True)
    command = "python bench/ops.py " + " ".join(sys.argv[1:])
    text = "\n".join(
        [
            f"Command: `{command}`",
            f"Machine: {platform.machine()}, {args.threads} thread(s), "
            f"torch {torch.__version__}; forward + backward on "
            f"{args.points:,} points, median of {args.repeats}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
            "",
            *rows,
            "",
        ]
    )
    atomic_write_bytes(Path(args.out), text.encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
