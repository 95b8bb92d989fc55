"""Screened Poisson as a row of ``rbfield compare sdf``: reconstruct, score as a field's mesh, write.

The baseline works in the same unit-cube domain as the fields and is scored by
the same :class:`rbfield.tasks.sdf.Reference`, its IoUs taken from the mesh's
own inside (generalised winding numbers). It writes ``OUT/poisson/``:

    mesh.ply       the reconstruction, in the input's coordinates
    metrics.json   the metrics, seconds, octree depth and how the normals were had

Input points: a point cloud's points as measured (duplicates and outliers
removed as for the fields, but not denoised: screened Poisson smooths by
itself), with its file's normals, or with normals Open3D estimates when the
file has none; a mesh's
:data:`MESH_POINTS` area-uniform samples with their face normals.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from rbfield.geometry.poisson_baseline import PoissonMesh, import_open3d, screened_poisson
from rbfield.geometry.shape_metrics import sample_surface
from rbfield.geometry.shapes_io import Mesh, PointCloud, save_mesh
from rbfield.io import atomic_write_json
from rbfield.runs import RunFolder, provenance
from rbfield.tasks.sdf import METRIC_SETTINGS, SURFACE_SAMPLES, Reference, load_normalized

#: Points drawn from a mesh input for screened Poisson, which reconstructs from points.
MESH_POINTS = 100_000
#: The baseline's name in tables and its run folder's name.
NAME = "poisson"
#: Density quantile trimmed from the reconstruction of an open surface (``--surface open``) unless told
#: otherwise: the usual practice, which removes the surface Poisson invents across holes and beyond the scan.
OPEN_SURFACE_TRIM = 0.01


def trim_for_surface(surface: str, trim_quantile: float | None) -> float | None:
    """The density quantile to trim: ``trim_quantile`` when given (0 keeps everything), else
    :data:`OPEN_SURFACE_TRIM` for an open surface and None for a closed one."""
    if trim_quantile is not None:
        return trim_quantile or None
    return OPEN_SURFACE_TRIM if surface == "open" else None


def poisson_points(shape: Mesh | PointCloud, seed: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """(P, 3) points and (P, 3) normals (None: to be estimated) that screened Poisson reconstructs ``shape`` from."""
    if isinstance(shape, Mesh):
        return sample_surface(shape.vertices, shape.faces, MESH_POINTS, seed)
    return shape.measured, None if shape.normals_estimated else shape.normals


def fit_poisson(
    path: str | Path,
    out: str | Path,
    metric_samples: int = SURFACE_SAMPLES,
    seed: int = 0,
    trim_quantile: float | None = None,
    overwrite: bool = False,
    normals: str = "auto",
    outliers: str = "remove",
) -> dict:
    """Screened Poisson on a mesh or point cloud, scored like a fitted field; writes the run folder ``out``.

    ``normals`` and ``outliers`` read a point cloud as the fields read it (:func:`rbfield.tasks.sdf.fit_sdf`);
    normals rbfield would estimate are left to Open3D instead, and the points are never denoised.

    Returns:
        The metrics written to ``metrics.json`` (``trainable_params`` and ``steps`` are None).
    """
    import_open3d()
    run = RunFolder(out, overwrite=overwrite)
    run.check()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fields' runs have reported them
        shape, normalization = load_normalized(path, normals, outliers)
    points, normals = poisson_points(shape, seed)
    result: PoissonMesh = screened_poisson(points, normals, trim_quantile=trim_quantile)
    metrics = Reference(shape, seed=seed, samples=metric_samples).score_mesh(result.vertices, result.faces)
    out = Path(out)
    report = {
        "field": NAME,
        "input": str(path),
        "kind": "mesh" if isinstance(shape, Mesh) else "point cloud",
        **metrics,
        "trainable_params": None,
        "total_params": None,
        "steps": None,
        "seconds": round(result.seconds, 2),
        "poisson_depth": result.depth,
        "poisson_points": len(points),
        "poisson_estimated_normals": result.estimated_normals,
        "poisson_trim_quantile": result.trim_quantile,
        "mesh_faces": int(len(result.faces)),
        "mesh": str(out / "mesh.ply"),
        "metric_samples": metric_samples,
        "metric_settings": METRIC_SETTINGS,
        **provenance([path], "cpu"),
    }
    with run.writing() as staging:
        save_mesh(staging / "mesh.ply", normalization.inverse(result.vertices), result.faces)
        atomic_write_json(staging / "metrics.json", report)
    return report
