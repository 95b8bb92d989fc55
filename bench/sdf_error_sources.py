"""Where a mesh fit's surface error comes from: the meshing floor and hole caps.

The first row, **reference meshed**, is the scan's own winding-number SDF,
meshed by rbfield's marching cubes at ``--res`` (small pieces dropped, as in
a fit) and scored against the scan like a fit. A perfect field would score
this, so it is the floor of NAE and Chamfer at that resolution (the floor of
the sampling alone is ``bench/metric_floor.py``'s). On an open scan it
includes the cap that the winding numbers put over each hole.

Then, for each ``rbfield fit sdf`` folder, the fit's mesh at ``--res`` scored
as the fit scores it, and again without the fit's samples farther than
``--cap-distance`` from the scan: on an open scan those are the cap over a
hole, which the scan has no surface to match.

    python bench/sdf_error_sources.py SCAN RUN_DIR [RUN_DIR ...] --res 512 --cap-distance 0.01

Distances in unit-cube domain units (the scan's longest side is 0.9). Prints
a markdown table.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree

from rbfield.geometry.shape_metrics import sample_surface, surface_metrics
from rbfield.ops import tree_query
from rbfield.signals.sdf import winding_sdf
from rbfield.tasks.sdf import load_normalized, load_sdf_field, shape_mesh

SAMPLES = 1_000_000


def reference_meshed(mesh, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """The scan's winding-number SDF meshed as a fit is: vertices (V, 3), faces (F, 3)."""

    def sdf(points: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(winding_sdf(mesh, points.double().numpy()).astype(np.float32))

    return shape_mesh(sdf, resolution)


def score_row(
    name: str,
    vertices: np.ndarray,
    faces: np.ndarray,
    scan_points: np.ndarray,
    scan_normals: np.ndarray,
    scan_tree: cKDTree,
    cap_distance: float,
) -> str:
    """One table row: NAE and Chamfer-L1 as is, the share of samples farther than
    cap_distance from the scan (``scan_tree`` holds scan_points), and NAE and
    Chamfer-L1 without them."""
    points, normals = sample_surface(vertices, faces, SAMPLES, seed=1)
    whole = surface_metrics(points, normals, scan_points, scan_normals)
    distance, _ = tree_query(scan_tree.query, points, k=1)
    near = distance <= cap_distance
    trimmed = surface_metrics(points[near], normals[near], scan_points, scan_normals)
    return (
        f"| {name} | {whole['nae_deg']:.2f} | {whole['chamfer_l1']:.5f} | {100 * (1 - near.mean()):.2f} % "
        f"| {trimmed['nae_deg']:.2f} | {trimmed['chamfer_l1']:.5f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scan", help="the mesh the runs were fitted to")
    parser.add_argument("runs", nargs="*", help="rbfield fit sdf output folders")
    parser.add_argument("--res", type=int, default=512, help="marching-cubes resolution")
    parser.add_argument("--cap-distance", type=float, default=0.01)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mesh, _ = load_normalized(args.scan)
    scan_points, scan_normals = sample_surface(mesh.vertices, mesh.faces, SAMPLES, seed=0)
    scan = (scan_points, scan_normals, cKDTree(scan_points))
    print(f"{args.scan}, marching cubes at {args.res}^3, {SAMPLES:,} samples a surface\n")
    print(
        f"| mesh | NAE (deg) | Chamfer-L1 | samples > {args.cap_distance} from the scan | NAE without them "
        "| Chamfer-L1 without them |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print(score_row("reference meshed", *reference_meshed(mesh, args.res), *scan, args.cap_distance))
    for run in args.runs:
        field, _ = load_sdf_field(Path(run) / "field.safetensors")
        print(score_row(run, *shape_mesh(field, args.res), *scan, args.cap_distance))


if __name__ == "__main__":
    main()
