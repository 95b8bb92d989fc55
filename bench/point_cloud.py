"""Point clouds from real scans: fit an SDF to points and normals only, score the mesh against the scan.

For each mesh in ``--shapes`` (from ../shared/data/meshes): ``--points`` points
uniform by area with their face normals (seed 0) are written to OUT/NAME.xyz;
``rbfield fit sdf`` runs on that file alone; then its mesh and field are scored
against the scan itself (``rbfield eval sdf RUN --against SCAN``: Chamfer-L1,
NAE, F-score, IoU). Clouds given as .xyz (e.g. kitten.xyz, which has no mesh)
are fitted as they are and scored against their own points and normals.

    python bench/point_cloud.py --shapes bunny00.off,fandisk.off,kitten.xyz --threads 2

Prints a markdown table and writes it to OUT/point_cloud.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from data_paths import MESHES
from rbfield.geometry.shape_metrics import sample_surface
from rbfield.geometry.shapes_io import Mesh, load_shape
from rbfield.io import atomic_write_bytes
from rbfield.tasks.sdf import DEFAULT_STEPS, evaluate_checkpoint, fit_sdf
from rbfield.train import TrainConfig


def write_cloud(mesh: Mesh, n_points: int, path: Path) -> None:
    """n_points area-uniform samples of the mesh with face normals, as x y z nx ny nz lines."""
    points, normals = sample_surface(mesh.vertices, mesh.faces, n_points, seed=0)
    lines = (" ".join(f"{v:.7g}" for v in row) for row in np.hstack([points, normals]))
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", default="bunny00.off,fandisk.off,kitten.xyz")
    parser.add_argument("--points", type=int, default=20_000, help="points sampled from each mesh")
    parser.add_argument("--field", default="neurbf")
    parser.add_argument("--params", default="500k")
    parser.add_argument(
        "--steps", type=int, default=DEFAULT_STEPS, help=f"training steps (default {DEFAULT_STEPS}, as the CLI)"
    )
    parser.add_argument("--res", type=int, default=256, help="marching-cubes resolution")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="runs/bench-point-cloud")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [
        "| input | points | field | Chamfer-L1 | NAE (deg) | F-score | IoU (vs the scan) | train s |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in args.shapes.split(","):
        source = MESHES / name
        shape = load_shape(source)
        if isinstance(shape, Mesh):
            cloud = out / f"{Path(name).stem}.xyz"
            write_cloud(shape, args.points, cloud)
            label, n_points = f"{name} sampled", args.points
        else:
            cloud, label, n_points = source, name, len(shape.points)
        run = out / f"{Path(name).stem}-{args.field}"
        report = fit_sdf(
            cloud,
            run,
            args.field,
            args.params,
            TrainConfig(steps=args.steps, progress=False),
            mesh_resolution=args.res,
            log=lambda *a: None,
        )
        scores = evaluate_checkpoint(run, source, args.res) if isinstance(shape, Mesh) else report
        (run / "scores_vs_source.json").write_text(json.dumps(scores, indent=2, default=str))
        iou = "-" if scores.get("iou") is None else f"{scores['iou']:.4f}"
        rows.append(
            f"| {label} | {n_points:,} | {args.field} | {scores['chamfer_l1']:.5f} | {scores['nae_deg']:.2f} | "
            f"{scores['fscore']:.3f} | {iou} | {report['seconds']:.0f} |"
        )
        print(rows[-1], flush=True)
    command = "python bench/point_cloud.py " + " ".join(sys.argv[1:])
    table = f"Command: `{command}`\n\n" + "\n".join(rows) + "\n"
    atomic_write_bytes(out / "point_cloud.md", table.encode())
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
