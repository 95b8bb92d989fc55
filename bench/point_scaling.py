"""Raw point clouds from 20,000 to millions of points: load and cleaning time, fit step time, peak memory.

For each size in ``--points``, that many points are sampled from a shared mesh
(area-uniform, seed 0) with Gaussian noise of ``--noise`` times its bounding-box
diagonal, and written without normals as an ``.xyz`` file into a scratch
folder. Each is then fitted in its own process (so that its peak memory is its
own), as ``rbfield fit sdf`` does it: the load (reading, duplicates, outliers,
normals estimated and oriented, denoising), ``--steps`` training steps and the
mesh at ``--res``^3. The figures are that process's own: seconds of each phase
and its peak resident memory (``ru_maxrss``).

    python bench/point_scaling.py --mesh bunny00.off --points 20000,200000,2000000 --steps 300

Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from data_paths import MESHES


def write_cloud(mesh_name: str, n_points: int, noise: float, path: Path) -> None:
    """``n_points`` noisy samples of a shared mesh, as ``x y z`` lines."""
    from rbfield.geometry.shape_metrics import sample_surface
    from rbfield.geometry.shapes_io import load_shape
    from rbfield.geometry.surface_distance import bbox_diagonal

    mesh = load_shape(MESHES / mesh_name)
    points, _ = sample_surface(mesh.vertices, mesh.faces, n_points, seed=0)
    points += np.random.default_rng(0).normal(scale=noise * bbox_diagonal(mesh.vertices), size=points.shape)
    np.savetxt(path, points, fmt="%.7g")


def fit_one(path: Path, steps: int, res: int, threads: int) -> dict:
    """Load and fit one cloud in this process; its phases' seconds and peak memory."""
    from rbfield.ops import keep_freed_memory_mapped, set_threads
    from rbfield.tasks.sdf import fit_sdf, load_normalized
    from rbfield.train import TrainConfig

    keep_freed_memory_mapped()  # as the command line does
    set_threads(threads)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cloud, _ = load_normalized(path)
    load_seconds, n_kept = time.perf_counter() - start, len(cloud.points)
    del cloud  # the fit reads the file again, as the command line does
    report = fit_sdf(
        path,
        path.with_suffix(""),
        train=TrainConfig(steps=steps, progress=False, seed=0),
        mesh_resolution=res,
        log=lambda *_: None,
        metric_samples=20_000,
        overwrite=True,
    )
    return {
        "points": n_kept,
        "load_seconds": load_seconds,
        "step_seconds": report["seconds"] / steps,
        "mesh_seconds": report["mesh_seconds"],
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mesh", default="bunny00.off", help="shared mesh the points are sampled from")
    parser.add_argument("--points", default="20000,200000,2000000", help="cloud sizes, comma-separated")
    parser.add_argument("--noise", type=float, default=0.0025, help="noise, a fraction of the bbox diagonal")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--res", type=int, default=256, help="marching-cubes resolution")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # fit this cloud here, print JSON
    args = parser.parse_args()
    if args.child:
        print(json.dumps(fit_one(args.child, args.steps, args.res, args.threads)))
        return 0
    print(f"{args.mesh}, noise {args.noise:g} of the diagonal, no normals; {args.steps} steps, {args.threads} threads")
    print("| points read | points kept | load s | step s | mesh s | peak memory GB |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as scratch:
        for n_points in (int(n) for n in args.points.split(",")):
            path = Path(scratch) / f"cloud-{n_points}.xyz"
            write_cloud(args.mesh, n_points, args.noise, path)
            command = [sys.executable, __file__, "--child", str(path), "--steps", str(args.steps)]
            command += ["--res", str(args.res), "--threads", str(args.threads)]
            result = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
            print(
                f"| {n_points:,} | {result['points']:,} | {result['load_seconds']:.1f} | {result['step_seconds']:.3f} "
                f"| {result['mesh_seconds']:.1f} | {result['peak_rss_bytes'] / 1e9:.2f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
