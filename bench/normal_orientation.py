"""Normals from raw points: how often the estimated, oriented normal points the same way as the scan's.

For each mesh in ``--shapes`` (from ../shared/data/meshes), ``--points`` points are sampled
uniformly by area with their face normals (seed 0). Gaussian noise of each ``--noise`` level
(a share of the bounding box's diagonal) is added, the normals are dropped, and normals are
estimated by local plane fits and oriented (rbfield.geometry.point_normals). The table gives
the share of points whose oriented normal has a positive dot product with the true one, beside
the rule rbfield used before (plane fits turned away from the centroid).

    python bench/normal_orientation.py --points 20000 --noise 0,0.001,0.0025
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from data_paths import MESHES
from rbfield.geometry.point_normals import local_planes, orient_normals
from rbfield.geometry.shape_metrics import sample_surface
from rbfield.geometry.shapes_io import load_shape


def centroid_rule(points: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Normals turned away from the points' centroid (the rule replaced)."""
    away = ((points - points.mean(axis=0)) * normals).sum(axis=1) < 0
    return np.where(away[:, None], -normals, normals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="bunny00.off,fandisk.off,elephant.off,camel.off")
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--noise", default="0,0.001,0.0025")
    args = parser.parse_args()
    rows = [
        "| mesh | noise | oriented (%) | centroid rule (%) | pieces | seconds |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in args.shapes.split(","):
        mesh = load_shape(MESHES / name)
        clean, truth = sample_surface(mesh.vertices, mesh.faces, args.points, seed=0)
        diagonal = np.linalg.norm(np.ptp(clean, axis=0))
        for noise in (float(level) for level in args.noise.split(",")):
            points = clean + np.random.default_rng(1).normal(size=clean.shape) * noise * diagonal
            started = time.perf_counter()
            planes = local_planes(points)
            orientation = orient_normals(points, planes.normals, planes.spacing)
            seconds = time.perf_counter() - started
            agree = 100 * ((orientation.normals * truth).sum(axis=1) > 0).mean()
            baseline = 100 * ((centroid_rule(points, planes.normals) * truth).sum(axis=1) > 0).mean()
            pieces = int(orientation.pieces.max()) + 1
            rows.append(f"| {name} | {noise:g} | {agree:.2f} | {baseline:.2f} | {pieces} | {seconds:.1f} |")
            print(rows[-1], flush=True)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
