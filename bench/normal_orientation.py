"""Normals from raw points: how often the estimated, oriented normal points the same way as the scan's.

For each mesh in ``--shapes`` (from ``--mesh-dir``, by default ../shared/data/meshes), ``--points``
points are sampled uniformly by area with their face normals (seed 0). Gaussian noise of each
``--noise`` level (a share of the bounding box's diagonal) is added, the normals are dropped, and
normals are estimated as rbfield.geometry.raw_points.prepare_points does it: plane fits oriented
over a minimum spanning tree (``estimated_normals``), then checked against the flood fill of free
space (rbfield.geometry.flood_orientation). The table gives the share of points whose normal has a
positive dot product with the true one after each step, beside the rule rbfield used first (plane
fits turned away from the centroid).

    python bench/normal_orientation.py --points 20000 --noise 0,0.001,0.0025
    python bench/normal_orientation.py --mesh-dir CGAL_DATA/meshes --shapes cow.off,armadillo.off
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from data_paths import MESHES
from rbfield.geometry.flood_orientation import check_normals
from rbfield.geometry.point_normals import PLANE_NEIGHBOURS, local_planes
from rbfield.geometry.raw_points import estimated_normals
from rbfield.geometry.shape_metrics import sample_surface
from rbfield.geometry.shapes_io import load_shape


def centroid_rule(points: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Normals turned away from the points' centroid (the first rule)."""
    away = ((points - points.mean(axis=0)) * normals).sum(axis=1) < 0
    return np.where(away[:, None], -normals, normals)


def agreement(normals: np.ndarray, truth: np.ndarray) -> float:
    """Percentage of (N, 3) normals with a positive dot product with the (N, 3) true ones."""
    return 100 * float(((normals * truth).sum(axis=1) > 0).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="bunny00.off,fandisk.off,elephant.off,camel.off")
    parser.add_argument("--mesh-dir", type=Path, default=MESHES, help="folder of --shapes")
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--noise", default="0,0.001,0.0025")
    args = parser.parse_args()
    rows = [
        "| mesh | noise | spanning tree (%) | then flood check (%) | turned | centroid rule (%) | pieces | seconds |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in args.shapes.split(","):
        mesh = load_shape(args.mesh_dir / name)
        clean, truth = sample_surface(mesh.vertices, mesh.faces, args.points, seed=0)
        diagonal = np.linalg.norm(np.ptp(clean, axis=0))
        for noise in (float(level) for level in args.noise.split(",")):
            points = clean + np.random.default_rng(1).normal(size=clean.shape) * noise * diagonal
            started = time.perf_counter()
            tree = cKDTree(points)
            planes = local_planes(points, PLANE_NEIGHBOURS, tree)
            orientation = estimated_normals(points, tree, planes)
            checked, turned = check_normals(points, orientation.normals, tree)
            seconds = time.perf_counter() - started
            pieces = int(orientation.pieces.max()) + 1
            rows.append(
                f"| {name} | {noise:g} | {agreement(orientation.normals, truth):.2f} | "
                f"{agreement(checked, truth):.2f} | {turned} | "
                f"{agreement(centroid_rule(points, planes.normals), truth):.2f} | {pieces} | {seconds:.1f} |"
            )
            print(rows[-1], flush=True)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
