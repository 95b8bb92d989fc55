"""Fields per hour on a dataset of real scans: single fits one after another, the local pool, and Ray.

The dataset is the shared meshes (and the kitten point cloud) plus meshes from Debian's ``libcgal-demo`` package
(``apt-get download libcgal-demo``; extract ``usr/share/doc/libcgal-dev/data.tar.gz`` and pass its
``data/meshes`` folder as ``--cgal``). Three ways to fit all of them with the same settings:

* sequential: ``rbfield fit sdf`` once per input, one after another, each a fresh process on 1 thread
  (``OMP_NUM_THREADS=1``), as a shell loop over the files would;
* pool: :func:`rbfield.datasets.fit_dataset` with ``--workers`` workers x 1 thread;
* ray: the same on a local Ray instance (started and stopped inside the timing) with 1 CPU per task.

Wall time covers everything (start-up, training, meshing, scoring, summaries). Prints a Markdown table with the
load average before and after each way (other people's work on a shared machine slows every row).

    PYTHONPATH=src python bench/datasets.py --cgal /tmp/cgal/data/meshes --steps 200 --out /tmp/bench-datasets
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from data_paths import MESHES

SHARED_SCANS = ("elephant.off", "fandisk.off", "kitten.xyz")
CGAL_SCANS = ("bull.off", "pig.off", "femur.off")


def dataset(cgal: Path | None) -> list[Path]:
    """The scans that exist: the shared ones, then the libcgal-demo ones if their folder is given."""
    scans = [MESHES / name for name in SHARED_SCANS]
    if cgal is not None:
        scans += [cgal / name for name in CGAL_SCANS]
    missing = [str(p) for p in scans if not p.is_file()]
    if missing:
        sys.exit(f"missing scans: {', '.join(missing)}")
    return scans


def fit_flags(args) -> list[str]:
    return [
        "--params",
        args.params,
        "--steps",
        str(args.steps),
        "--res",
        str(args.res),
        "--metric-samples",
        str(args.metric_samples),
        "--checkpoint-every",
        "0",
        "--quiet",
    ]


def sequential(scans: list[Path], out: Path, args) -> int:
    """``rbfield fit sdf`` per scan, one after another on 1 thread; the number that failed."""
    from rbfield.ops import thread_environment

    environment = thread_environment(1)
    failed = 0
    for scan in scans:
        command = [sys.executable, "-m", "rbfield.cli", "fit", "sdf", str(scan), "--out", str(out / scan.stem)]
        result = subprocess.run(command + fit_flags(args), env=environment, capture_output=True, text=True)
        failed += result.returncode != 0
    return failed


def with_library(scans: list[Path], out: Path, args, backend: str) -> int:
    """The scans as one dataset (a manifest) on ``backend``; the number that failed."""
    from rbfield.datasets import fit_dataset

    manifest = out.parent / f"{out.name}.csv"
    manifest.write_text("path\n" + "".join(f"{scan}\n" for scan in scans))
    result = fit_dataset(
        manifest,
        out,
        "sdf",
        params=args.params,
        steps=args.steps,
        checkpoint_every=0,
        workers=args.workers,
        threads=1,
        backend=backend,
        progress=None,
        mesh_resolution=args.res,
        metric_samples=args.metric_samples,
    )
    return result.failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cgal", type=Path, help="libcgal-demo's data/meshes folder")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench-datasets"))
    parser.add_argument("--params", default="100k")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--res", type=int, default=128, help="marching-cubes resolution")
    parser.add_argument("--metric-samples", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--ways", default="sequential,pool,ray")
    args = parser.parse_args()
    scans = dataset(args.cgal)
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    print(
        f"{len(scans)} scans; neurbf, {args.params} parameters, {args.steps} steps, marching cubes at {args.res}^3, "
        f"{args.metric_samples:,} metric samples; {os.cpu_count()} cores\n"
    )
    print("| way | fits | failed | wall (s) | fields per hour | vs sequential | load before / after |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |", flush=True)
    baseline = None
    for way in args.ways.split(","):
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        if way == "sequential":
            failed = sequential(scans, args.out / way, args)
            label = "sequential (1 thread, one after another)"
        else:
            failed = with_library(scans, args.out / way, args, "local" if way == "pool" else "ray")
            label = f"{way} ({args.workers} workers x 1 thread)" if way == "pool" else f"ray ({args.workers} CPUs)"
        wall = time.perf_counter() - started
        per_hour = len(scans) / wall * 3600
        baseline = baseline or (per_hour if way == "sequential" else None)
        ratio = f"{per_hour / baseline:.2f}x" if baseline else "n/a"
        print(
            f"| {label} | {len(scans)} | {failed} | {wall:.0f} | {per_hour:.0f} | {ratio} | "
            f"{load_before:.1f} / {os.getloadavg()[0]:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
