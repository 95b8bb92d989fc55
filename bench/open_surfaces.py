"""Open surfaces: how the trimming rule's constants behave on closed and open inputs.

Each input's own signed distance (generalised winding numbers, as a fit's
target) is meshed at ``--res``^3, standing for a perfect fit: it is closed, and
on an open input it carries the caps a fit would have. The mesh is then trimmed
(:func:`rbfield.geometry.open_surface.trim_unsupported`) for every pair of
``--spacing-factors`` x ``--voxel-factors``, with the input's support:

* a mesh's SUPPORT_SAMPLES area-uniform samples ("mesh" rows), or
* ``--cloud-points`` area-uniform samples of it, standing for a scan of it
  ("cloud" rows; the closed meshes only).

Inputs: the closed meshes bunny and elephant from ../shared/data/meshes; the
elephant with ``--holes`` holes cut out (faces within 5 % of the diagonal of
random vertices, seed 1); the open scans in ``--cgal DIR`` (CGAL's demo
``meshes`` folder): lion-head, head, mannequin-devil.

Columns: the unsupported share of the closed mesh's area; the trimmed mesh's
area over the input's (a cap left in raises it above 1, over-trimming lowers
it); its boundary length over the input's; its boundary loops against the
input's. A closed input should score share 0, area ratio 1, no loops.

    python bench/open_surfaces.py --cgal CGAL_DATA/meshes
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import torch

from data_paths import MESHES
from rbfield.geometry.marching_cubes import extract_mesh
from rbfield.geometry.open_surface import Support, boundary_summary, trim_unsupported
from rbfield.geometry.shape_metrics import sample_surface
from rbfield.geometry.shapes_io import Mesh, Normalization, PointCloud, load_shape
from rbfield.geometry.triangles import face_areas
from rbfield.signals.sdf import winding_sdf

OPEN_SCANS = ("lion-head", "head", "mannequin-devil")


def normalized(path: Path) -> Mesh:
    """A mesh file mapped into rbfield's domain, as a fit maps it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mesh = load_shape(path)
    return Mesh(Normalization.fit(mesh.vertices).forward(mesh.vertices), mesh.faces)


def cut_holes(mesh: Mesh, holes: int) -> Mesh:
    """The mesh without the faces within 5 % of its diagonal of ``holes`` random vertices (seed 1)."""
    rng = np.random.default_rng(1)
    centres = mesh.vertices[rng.choice(len(mesh.vertices), holes, replace=False)]
    radius = 0.05 * np.linalg.norm(np.ptp(mesh.vertices, axis=0))
    centroids = mesh.vertices[mesh.faces].mean(axis=1)
    near = (np.linalg.norm(centroids[:, None] - centres[None], axis=2) < radius).any(axis=1)
    return Mesh(mesh.vertices, mesh.faces[~near])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cgal", type=Path, help="CGAL's demo data 'meshes' folder (for the open scans)")
    parser.add_argument("--res", type=int, default=256)
    parser.add_argument("--holes", type=int, default=3)
    parser.add_argument("--cloud-points", type=int, default=20_000)
    parser.add_argument("--spacing-factors", default="1,2,3,4")
    parser.add_argument("--voxel-factors", default="1,2")
    args = parser.parse_args()
    torch.set_num_threads(1)
    elephant = normalized(MESHES / "elephant.off")
    inputs = [("bunny", normalized(MESHES / "bunny00.off"), True), ("elephant", elephant, True)]
    inputs.append((f"elephant, {args.holes} holes", cut_holes(elephant, args.holes), False))
    if args.cgal:
        inputs += [(name, normalized(args.cgal / f"{name}.off"), False) for name in OPEN_SCANS]
    voxel = 1.0 / (args.res - 1)
    print("| input | support | alpha | beta | median tau | unsupported share | area ratio | boundary ratio | loops |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for name, mesh, closed in inputs:
        vertices, faces = extract_mesh(
            lambda x, mesh=mesh: torch.as_tensor(winding_sdf(mesh, x.numpy())), args.res, device=torch.device("cpu")
        )
        truth = boundary_summary(mesh.vertices, mesh.faces)
        area = face_areas(mesh.vertices, mesh.faces).sum()
        supports = [("mesh", Support.of(mesh))]
        if closed:
            points, normals = sample_surface(mesh.vertices, mesh.faces, args.cloud_points, seed=2)
            supports.append((f"cloud {args.cloud_points}", Support.of(PointCloud(points, normals))))
        for support_name, support in supports:
            for alpha in map(float, args.spacing_factors.split(",")):
                for beta in map(float, args.voxel_factors.split(",")):
                    trimmed = trim_unsupported(vertices, faces, support, voxel, 0.01, (alpha, beta))
                    found = boundary_summary(trimmed.vertices, trimmed.faces)
                    ratio = found["boundary_length"] / truth["boundary_length"] if truth["boundary_length"] else None
                    print(
                        f"| {name} | {support_name} | {alpha:g} | {beta:g} | {trimmed.shares['trim_threshold']:.4f} "
                        f"| {trimmed.shares['unsupported_area_share']:.4f} "
                        f"| {face_areas(trimmed.vertices, trimmed.faces).sum() / area:.3f} "
                        f"| {'-' if ratio is None else f'{ratio:.2f}'} "
                        f"| {found['boundary_loops']} (input {truth['boundary_loops']}) |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
