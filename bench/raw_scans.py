"""Raw scans: rbfield's SDF fit against screened Poisson on points with noise, without normals, with holes.

Inputs (each written as an .xyz file in OUT, in the source's own units):

* from each mesh in ``--meshes`` (read from ``--mesh-dir``, ../shared/data/meshes by
  default; CGAL's ``data/meshes`` holds many more): ``--points``
  area-uniform samples (seed 0), with Gaussian noise of ``--noise`` times the
  mesh's bounding-box diagonal per axis (0, 0.25 % and 1 % by default), each
  written with the exact face normals of the clean samples and without normals
  (``--normals`` keeps one of the two);
  and one variant without noise, with normals, with the points inside
  ``--holes`` balls of radius 5 % of the diagonal removed (centres: random
  input points, seed 1);
* from ``--cgal DIR`` (CGAL's ``points_3`` demo data), each cloud in
  ``--clouds`` as it is, with its own normals where it has them;
* each file in ``--scans`` (any point cloud rbfield reads, e.g. an aerial
  lidar LAS/LAZ file) as it is.

Each input is reconstructed twice:

* rbfield: ``fit_sdf`` (as ``rbfield fit sdf``) with the default field
  (neurbf), ``--params`` and ``--steps``, meshed at ``--res``^3; a cloud
  without normals gets rbfield's own normal estimate. Its time is training
  plus mesh extraction.
* screened Poisson (rbfield.geometry.poisson_baseline, Open3D): the file's
  normals, or Open3D's when it has none; depth from the point spacing;
  trimmed by density with ``--trim Q`` (the vertices below that quantile
  removed), untrimmed by default. Its time is normal estimation plus the
  reconstruction.

``--surface open`` fits every input as an open surface (``rbfield fit sdf
--surface open``).

Scores (rbfield.geometry.surface_distance), in % of the reference's bounding-box
diagonal: Chamfer-L1 to the clean mesh (``--samples`` points on each mesh), or,
for a CGAL cloud or a scan, to its input points as read (the mean of the two
directions, input point to mesh and mesh sample to nearest input point). Needs the ``poisson``
extra.

    python bench/raw_scans.py --cgal CGAL_DATA/points_3 --threads 1

Prints a markdown table, a row per input as it finishes; writes it, with every metric, to
OUT/raw_scans.md and .json.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import torch

from data_paths import MESHES
from rbfield.errors import RbfieldError
from rbfield.geometry.poisson_baseline import screened_poisson
from rbfield.geometry.shape_metrics import sample_surface
from rbfield.geometry.shapes_io import Mesh, PointCloud, ShapeWarning, load_shape
from rbfield.geometry.surface_distance import bbox_diagonal, mesh_to_mesh, mesh_to_points
from rbfield.io import atomic_write_bytes, atomic_write_json
from rbfield.tasks.sdf import DEFAULT_STEPS, fit_sdf
from rbfield.train import TrainConfig

#: Radius of each hole, as a fraction of the mesh's bounding-box diagonal.
HOLE_RADIUS = 0.05


def scan_variants(
    mesh: Mesh, n_points: int, noises: list[float], holes: int, normals_kept: str = "both"
) -> list[tuple[str, float, PointCloud]]:
    """(label, noise, cloud) for each variant of points sampled from ``mesh``; ``normals_estimated``
    marks the variants to be written without normals. ``normals_kept``: "both", "given" (only the
    variants with normals) or "none" (only those without)."""
    points, normals = sample_surface(mesh.vertices, mesh.faces, n_points, seed=0)
    diagonal = bbox_diagonal(mesh.vertices)
    rng = np.random.default_rng(0)
    variants = []
    for noise in noises:
        noisy = points + rng.normal(scale=noise * diagonal, size=points.shape) if noise else points
        if normals_kept != "none":
            variants.append(("normals", noise, PointCloud(noisy, normals)))
        if normals_kept != "given":
            variants.append(("no normals", noise, PointCloud(noisy, normals, normals_estimated=True)))
    if holes:
        rng = np.random.default_rng(1)
        centres = points[rng.choice(len(points), holes, replace=False)]
        distance = np.linalg.norm(points[:, None, :] - centres[None], axis=2).min(1)
        kept = distance > HOLE_RADIUS * diagonal
        variants.append((f"normals, {holes} holes", 0.0, PointCloud(points[kept], normals[kept])))
    return variants


def write_xyz(cloud: PointCloud, path: Path) -> None:
    """x y z [nx ny nz] lines; without normals when ``cloud.normals_estimated``."""
    data = cloud.points if cloud.normals_estimated else np.hstack([cloud.points, cloud.normals])
    lines = (" ".join(f"{v:.9g}" for v in row) for row in data)
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())


def read_mesh(path: Path) -> Mesh:
    """A fit's mesh, or an empty one when the fit's mesh is missing or empty (scored as inf)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ShapeWarning)  # a fit's mesh may be open where the scan is
            return load_shape(path)
    except RbfieldError:
        return Mesh(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64))


def chamfer_percent(vertices: np.ndarray, faces: np.ndarray, reference: Mesh | None, cloud: PointCloud, samples: int):
    """Chamfer-L1 in % of the reference's diagonal, and every metric behind it."""
    if reference is not None:
        metrics = mesh_to_mesh(vertices, faces, reference.vertices, reference.faces, samples=samples)
        return 100 * metrics["chamfer_l1_rel"], metrics
    metrics = mesh_to_points(vertices, faces, cloud.measured, samples=samples)
    return 50 * (metrics["points_to_mesh_mean_rel"] + metrics["mesh_to_points_mean_rel"]), metrics


def run_one(args, name: str, path: Path, cloud: PointCloud, reference: Mesh | None) -> dict:
    """rbfield and screened Poisson on one input file; their times and scores."""
    report = fit_sdf(
        path,
        args.out / f"{path.stem}-neurbf",
        params=args.params,
        train=TrainConfig(steps=args.steps, progress=False, seed=0),
        mesh_resolution=args.res,
        log=lambda *_: None,
        metric_samples=1000,  # scored below, in the input's units
        overwrite=True,
        surface=args.surface,
    )
    fitted = read_mesh(args.out / f"{path.stem}-neurbf" / "mesh.ply")
    ours, ours_metrics = chamfer_percent(fitted.vertices, fitted.faces, reference, cloud, args.samples)
    poisson = screened_poisson(
        cloud.measured, None if cloud.normals_estimated else cloud.normals, trim_quantile=args.trim
    )
    theirs, theirs_metrics = chamfer_percent(poisson.vertices, poisson.faces, reference, cloud, args.samples)
    return {
        "input": name,
        "points": len(cloud.points),
        "against": "mesh" if reference is not None else "points",
        "rbfield_seconds": report["seconds"] + report["mesh_seconds"],
        "rbfield_chamfer_pct": ours,
        "rbfield_metrics": ours_metrics,
        "poisson_seconds": poisson.seconds,
        "poisson_depth": poisson.depth,
        "poisson_chamfer_pct": theirs,
        "poisson_metrics": theirs_metrics,
    }


def inputs(args):
    """(name, file, cloud, reference mesh or None) for every input, writing the sampled ones."""
    for mesh_name in filter(None, args.meshes.split(",")):
        mesh = load_shape(args.mesh_dir / mesh_name)
        for label, noise, cloud in scan_variants(mesh, args.points, args.noises, args.holes, args.normals):
            tag = f"{Path(mesh_name).stem}-{noise * 100:g}pct-{label.replace(', ', '-').replace(' ', '')}"
            path = args.out / f"{tag}.xyz"
            write_xyz(cloud, path)
            yield f"{mesh_name}, noise {noise * 100:g} %, {label}", path, cloud, mesh
    if args.cgal:
        for cloud_name in filter(None, args.clouds.split(",")):
            path = Path(args.cgal) / cloud_name
            cloud = load_shape(path)
            normals = "file normals" if not cloud.normals_estimated else "no normals"
            yield f"CGAL {cloud_name}, {normals}", path, cloud, None
    for scan in filter(None, args.scans.split(",")):
        cloud = load_shape(scan)
        normals = "file normals" if not cloud.normals_estimated else "no normals"
        yield f"{Path(scan).name}, {normals}", Path(scan), cloud, None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--meshes", default="bunny00.off,fandisk.off,elephant.off,camel.off")
    parser.add_argument("--mesh-dir", type=Path, default=MESHES, help="folder of --meshes")
    parser.add_argument(
        "--normals", choices=("both", "given", "none"), default="both", help="sampled variants with/without normals"
    )
    parser.add_argument("--points", type=int, default=20_000, help="points sampled from each mesh")
    parser.add_argument("--noise", default="0,0.0025,0.01", help="noise levels, fractions of the bbox diagonal")
    parser.add_argument("--holes", type=int, default=3, help="balls cut out of the holes variant (0: none)")
    parser.add_argument("--cgal", help="CGAL's points_3 folder (from libcgal-demo's data.tar.gz)")
    parser.add_argument("--clouds", default="hippo1.ply,oni.pwn,blobby.xyz,radar.xyz,building.ply")
    parser.add_argument("--scans", default="", help="more point-cloud files, comma-separated")
    parser.add_argument("--surface", choices=("closed", "open"), default="closed", help="rbfield's surface mode")
    parser.add_argument("--trim", type=float, help="screened Poisson's density quantile to trim (default: none)")
    parser.add_argument("--params", default="500k")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"training steps (default {DEFAULT_STEPS})")
    parser.add_argument("--res", type=int, default=256, help="marching-cubes resolution of rbfield's mesh")
    parser.add_argument("--samples", type=int, default=200_000, help="surface samples per mesh for the scores")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-raw-scans"))
    args = parser.parse_args()
    args.noises = [float(x) for x in args.noise.split(",")]
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = [
        f"rbfield: neurbf, {args.params} parameters, {args.steps} steps, {args.res}^3 mesh, --surface "
        f"{args.surface}; screened Poisson: Open3D, depth from the point spacing, "
        f"{f'density trimmed at {args.trim}' if args.trim else 'untrimmed'}. Chamfer-L1 in % of the bbox diagonal, "
        f"{args.samples:,} samples per mesh; {args.threads} thread(s).",
        "",
        "| input | points | against | rbfield Chamfer-L1 | Poisson Chamfer-L1 | rbfield s | Poisson s (depth) |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    print("\n".join(rows), flush=True)
    results = []
    for name, path, cloud, reference in inputs(args):
        r = run_one(args, name, path, cloud, reference)
        results.append(r)
        rows.append(
            f"| {name} | {r['points']:,} | {r['against']} | {r['rbfield_chamfer_pct']:.3f} | "
            f"{r['poisson_chamfer_pct']:.3f} | {r['rbfield_seconds']:.1f} | "
            f"{r['poisson_seconds']:.1f} ({r['poisson_depth']}) |"
        )
        print(rows[-1], flush=True)
    table = "\n".join(rows) + "\n"
    atomic_write_bytes(args.out / "raw_scans.md", table.encode())
    atomic_write_json(
        args.out / "raw_scans.json", {"settings": {k: str(v) for k, v in vars(args).items()}, "runs": results}
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
