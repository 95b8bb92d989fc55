"""How well a fitted SDF keeps unit slope at the scan's surface and the true depth behind it.

A true SDF has |grad f| = 1 at the surface and f = -d at depth d behind it
(inside, along the inward normal), up to half the local wall thickness. A
field that cannot follow a thin wall flattens it: f stays shallower than -d
in the wall and |grad f| drops below 1 at the surface, so any small error in
f tilts the surface normal more. This prints, at surface samples of the scan
(area-uniform, in the normalized domain of ``rbfield fit sdf``):

* |grad f| (exact, by autograd): 10th, 50th and 90th percentiles;
* the mean angle in degrees between grad f and the scan's face normal;
* the median of f at each depth d behind the surface, beside -d.

    python bench/sdf_surface_gradient.py SCAN RUN_DIR [RUN_DIR ...] --depths 0.001,0.0025

RUN_DIR is a ``rbfield fit sdf`` output folder (its ``field.safetensors``).
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import torch

from rbfield.geometry.shape_metrics import sample_surface
from rbfield.tasks.sdf import load_normalized, load_sdf_field


def surface_gradient_stats(
    field: torch.nn.Module, points: np.ndarray, normals: np.ndarray, depths: list[float]
) -> dict:
    """|grad f| percentiles, gradient-to-normal angle and f behind the surface.

    Args:
        field: an SDF field on [0, 1]^3.
        points, normals: (P, 3) surface samples and unit outward normals, domain units.
        depths: distances behind the surface (domain units) at which to sample f.
    """
    x = torch.tensor(points, dtype=torch.float32, requires_grad=True)
    (gradient,) = torch.autograd.grad(field(x).sum(), x)
    gradient = gradient.numpy().astype(np.float64)
    length = np.linalg.norm(gradient, axis=1)
    cosine = (gradient * normals).sum(1) / np.maximum(length, 1e-12)
    with torch.no_grad():
        behind = {
            d: float(np.median(field(torch.tensor(points - d * normals, dtype=torch.float32)).numpy())) for d in depths
        }
    return {
        "gradient_percentiles": np.percentile(length, [10, 50, 90]),
        "angle_deg": float(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))).mean()),
        "behind": behind,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scan", help="the mesh the runs were fitted to")
    parser.add_argument("runs", nargs="+", help="rbfield fit sdf output folders")
    parser.add_argument("--depths", default="0.001,0.0025", help="comma-separated depths behind the surface")
    parser.add_argument("--samples", type=int, default=50_000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    depths = [float(d) for d in args.depths.split(",")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mesh, _ = load_normalized(args.scan)
    points, normals = sample_surface(mesh.vertices, mesh.faces, args.samples, seed=3)
    print(
        "| run | abs grad f p10 / p50 / p90 | angle(grad f, n) deg | "
        + " | ".join(f"median f at {d} behind" for d in depths)
        + " |"
    )
    print("| --- | ---: | ---: | " + " | ".join("---:" for _ in depths) + " |")
    for run in args.runs:
        field, _ = load_sdf_field(Path(run) / "field.safetensors")
        stats = surface_gradient_stats(field, points, normals, depths)
        p10, p50, p90 = stats["gradient_percentiles"]
        behind = " | ".join(f"{stats['behind'][d]:.5f}" for d in depths)
        print(f"| {run} | {p10:.3f} / {p50:.3f} / {p90:.3f} | {stats['angle_deg']:.2f} | {behind} |")


if __name__ == "__main__":
    main()
