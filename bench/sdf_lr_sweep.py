"""Learning-rate sweep for SDF presets on a CPU budget (evidence for fields.py's "sdf" rates).

Usage (one heavy process at a time, on a shared 2-core machine):
    OMP_NUM_THREADS=1 python bench/sdf_lr_sweep.py ../shared/data/meshes/bunny00.off \
        --field neurbf --lrs 1e-4,1e-3,5e-3 --steps 300 --res 256

Prints one line per learning rate: IoU (field signs), Chamfer-L1, NAE at the
marching-cubes resolution, seconds.
"""

from __future__ import annotations

import argparse
import time

import torch

from rbfield.fields import build_field
from rbfield.geometry.marching_cubes import extract_mesh
from rbfield.signals.sdf import MeshSDF
from rbfield.tasks.sdf import Reference, load_normalized
from rbfield.train import TrainConfig, fit


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path")
    parser.add_argument("--field", default="neurbf")
    parser.add_argument("--params", default="500k")
    parser.add_argument("--lrs", default="1e-4,1e-3,5e-3")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=2**14)
    parser.add_argument("--res", type=int, default=256)
    parser.add_argument("--eval-every", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(1)
    shape, _ = load_normalized(args.path)
    signal = MeshSDF(shape, args.path, batch_size=args.batch)
    reference = Reference(shape)
    for lr in (float(v) for v in args.lrs.split(",")):
        field = build_field(args.field, signal.spec(), args.params)
        field.learning_rates = {"encoding": lr, "decoder": lr}
        field.initialize(signal)
        result = fit(field, signal, TrainConfig(steps=args.steps, eval_every=args.eval_every, progress=False))
        print(
            "  quick inside IoU by step:",
            " ".join(f"{h['step']}:{h['iou_inside']:.4f}" for h in result.history),
            flush=True,
        )
        started = time.perf_counter()
        vertices, faces = extract_mesh(lambda x: field(x).reshape(-1), args.res)
        m = reference.score(field, vertices, faces)
        print(
            f"{args.field} lr {lr:g}: IoU {m['iou']:.4f} chamfer_l1 {m['chamfer_l1']:.5f} NAE {m['nae_deg']:.2f} "
            f"F {m['fscore']:.4f} | {result.steps} steps {result.seconds:.0f} s train, "
            f"{time.perf_counter() - started:.0f} s mesh+metrics",
            flush=True,
        )


if __name__ == "__main__":
    main()
