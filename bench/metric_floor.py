"""The surface metrics' sampling floor: a scan scored against itself.

A perfect reconstruction of a mesh would be scored as two independent
area-uniform samplings of that mesh. Their Chamfer distance and normal angular
error are not zero: each sample's nearest neighbour lies on a nearby face,
whose normal differs on a rough scan. This prints that floor for each mesh at
each sample count, in the same normalized domain as ``rbfield fit sdf``.

    python bench/metric_floor.py ../shared/data/meshes/bunny00.off DRAGON.ply --samples 200000,1000000

Prints a markdown table.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import torch

from rbfield.geometry.shape_metrics import sample_surface, surface_metrics
from rbfield.tasks.sdf import load_normalized


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("meshes", nargs="+", help="mesh files (any format rbfield reads)")
    parser.add_argument("--samples", default="200000,1000000", help="comma-separated sample counts per surface")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)  # the k-d tree queries use torch's thread count
    counts = [int(c) for c in args.samples.split(",")]
    print("| mesh | samples | NAE (deg) | Chamfer-L1 | normal consistency |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for path in args.meshes:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mesh, _ = load_normalized(path)
        for count in counts:
            a, normals_a = sample_surface(mesh.vertices, mesh.faces, count, seed=0)
            b, normals_b = sample_surface(mesh.vertices, mesh.faces, count, seed=1)
            m = surface_metrics(a, normals_a, b, normals_b)
            print(
                f"| {Path(path).name} | {count:,} | {m['nae_deg']:.2f} | {m['chamfer_l1']:.5f} | "
                f"{m['normal_consistency']:.5f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
