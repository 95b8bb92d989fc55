"""Shape jobs behind the CLI: fit an SDF into a run folder, export, evaluate, compare.

A run folder holds::

    config.json               the settings used
    field.safetensors/.json   the fitted field; its config carries the
                              normalization (input units <-> [0, 1]^3)
    checkpoint.pt             resumable training state
    mesh.ply                  marching-cubes mesh without small floating pieces,
                              in the input's coordinates
    metrics.json              iou, chamfer_l1/l2, nae_deg, fscore, ... + conventions
    views.png                 the mesh from four views
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from rbfield.commands.sdf import DEFAULT_RES, DEFAULT_STEPS, SURFACE_SAMPLES
from rbfield.datasets import is_dataset
from rbfield.datasets.command import run_dataset_command
from rbfield.errors import RbfieldError
from rbfield.fields import build_field, parse_budget, presets_for
from rbfield.geometry.marching_cubes import check_resolution, extract_mesh
from rbfield.geometry.mesh_pieces import MIN_PIECE_SHARE, drop_small_pieces
from rbfield.geometry.open_surface import check_surface_mode, finish_surface, open_surface_hint
from rbfield.geometry.preview import save_preview
from rbfield.geometry.shape_metrics import (
    FSCORE_TAU,
    sample_surface,
    sign_iou,
    surface_metrics,
)
from rbfield.geometry.shapes_io import (
    Mesh,
    Normalization,
    PointCloud,
    check_mesh_output,
    load_shape,
    save_mesh,
)
from rbfield.io import (
    atomic_write_bytes,
    atomic_write_json,
    load_field,
    read_field_config,
    resolve_field_path,
    save_field,
)
from rbfield.runs import RunFolder, provenance
from rbfield.signals.sdf import (
    DEFAULT_BATCH,
    MeshSDF,
    PointCloudSDF,
    evaluate_sdf,
    iou_point_weights,
    iou_points,
    winding_sdf,
)
from rbfield.tasks.common import (
    format_metric,
    log_resume,
    parameter_summary,
    parse_field_names,
    report_finished_runs,
    report_interrupt,
    reporting_interrupts,
    resolve_device,
    train_config,
)
from rbfield.train import TrainConfig, field_device, initialize_and_fit

#: Exit status of a fit that ran but whose result fails :func:`quality_problem`.
FAILED_FIT_STATUS = 3
#: Query points for IoU (half uniform, half near the surface).
IOU_POINTS = 2**18
#: The near half is drawn from the first this-many surface samples (an i.i.d.
#: prefix): its density, and so each point's weight, costs a neighbour count
#: that grows with the number of samples, and 200,000 already resolve it.
IOU_SURFACE_SAMPLES = 200_000

METRIC_SETTINGS = {
    "units": "unit-cube domain units: the input is scaled so its bounding box's longest side is 0.9",
    "surface_samples": "metric_samples points per mesh (the reference's and the fit's), uniform by area, with "
    "face normals; a point-cloud reference is its own points and normals",
    "iou": "volume IoU of the outsides, |outside both| / |outside either| (sdf >= 0), of the field and the "
    "reference SDF (generalised winding numbers) over the domain [0,1]^3: the convention of NeuRBF's released "
    "evaluation, so comparable with its published IoUs (0.9995). The outside fills most of the domain, so this is "
    "lenient; iou_inside is the strict measure. Our domain is tighter around the shape than NeuRBF's [-1,1]^3 "
    "(longest side 0.9 of 1 here; bounding sphere of radius 0.99 of 1 there), so this value is, if anything, "
    "lower than NeuRBF's code would give. Estimated from the same weighted points as iou_inside",
    "iou_inside": f"volume IoU of the insides, |inside both| / |inside either| (sdf < 0), in [0,1]^3, from the "
    f"signs at {IOU_POINTS} points: half uniform in [0,1]^3, half reference-surface samples jittered uniformly by "
    "+-0.01 per axis. Each point counts with weight 1 / (its sampling density), so the near half resolves the thin "
    "region where the signs differ and the estimate does not depend on the mix of the halves (multiple importance "
    "sampling, balance heuristic). Thin shapes hold little volume, so the same surface error costs them more",
    "iou_pooled": "the insides' IoU over the same points counted without weights (rbfield's headline iou until "
    "2026-11-24); its value depends on the 50:50 mix, and the near half dominates it",
    "iou_uniform": "point-count IoU of the insides on the uniform half alone: an unweighted estimate of iou_inside",
    "iou_near": "point-count IoU of the insides on the near half alone. Very sensitive: a surface offset of 1e-3 "
    "flips the sign of roughly 5% of the near points",
    "chamfer_l1": "mean Euclidean nearest-neighbour distance, averaged over both directions (not squared, not summed)",
    "chamfer_l2": "mean squared nearest-neighbour distance, averaged over both directions",
    "nae_deg": "mean angle in degrees between oriented normals at nearest-neighbour pairs, averaged over both "
    "directions (NeuRBF's definition)",
    "normal_consistency": "mean |cos| between normals at nearest-neighbour pairs, averaged over both directions",
    "fscore": f"F-score of nearest-neighbour distances at tau = {FSCORE_TAU}",
    "mesh": "metrics of the marching-cubes mesh at mesh_resolution^3 after dropping connected pieces with less "
    "than mesh_min_piece_share of the largest piece's area (floaters); iou is of the field itself",
}


def load_normalized(
    path: str | Path, normals: str = "auto", outliers: str = "remove", denoise: str = "auto"
) -> tuple[Mesh | PointCloud, Normalization]:
    """Read a mesh or point cloud (``normals``, ``outliers``, ``denoise``: see :func:`load_shape`) and map it
    into [0, 1]^3."""
    shape = load_shape(path, normals, outliers, denoise)
    normalization = Normalization.fit(shape.vertices if isinstance(shape, Mesh) else shape.points)
    return mapped_into_domain(shape, normalization), normalization


def mapped_into_domain(shape: Mesh | PointCloud, normalization: Normalization) -> Mesh | PointCloud:
    """``shape`` (input units) mapped into the domain by ``normalization``: a mesh's vertices, a point
    cloud's points and read points."""
    if isinstance(shape, Mesh):
        return Mesh(normalization.forward(shape.vertices), shape.faces)
    read_points = None if shape.read_points is None else normalization.forward(shape.read_points)
    return replace(shape, points=normalization.forward(shape.points), read_points=read_points)


class Reference:
    """What a fitted shape is judged against, in domain units.

    Args:
        shape: a normalized mesh (all metrics) or point cloud (no IoU: its
            inside is unknown; the input points as measured, before any denoising, and their normals
            are the surface).
        seed: seeds the samples.
        samples: surface samples per mesh (Chamfer, NAE, F-score).
    """

    def __init__(self, shape: Mesh | PointCloud, seed: int = 0, samples: int = SURFACE_SAMPLES):
        self.samples = samples
        if isinstance(shape, Mesh):
            self.points, self.normals = sample_surface(shape.vertices, shape.faces, samples, seed)
            surface = self.points[:IOU_SURFACE_SAMPLES]
            self.iou_points = iou_points(surface, IOU_POINTS, np.random.default_rng(seed + 2))
            self.iou_sdf = winding_sdf(shape, self.iou_points)
            self.iou_weights = iou_point_weights(self.iou_points, surface)
        else:
            self.points, self.normals = shape.measured, shape.normals
            self.iou_points = self.iou_sdf = self.iou_weights = None

    def score(self, field: torch.nn.Module, vertices: np.ndarray, faces: np.ndarray) -> dict:
        """Metrics of a field and its extracted mesh (domain units)."""
        predicted = None if self.iou_points is None else evaluate_sdf(field, self.iou_points)
        return self._score(predicted, vertices, faces)

    def score_mesh(self, vertices: np.ndarray, faces: np.ndarray) -> dict:
        """Metrics of a mesh made without a field (domain units): the IoUs take its inside
        from generalised winding numbers, as the reference's."""
        predicted = None
        if self.iou_points is not None:
            inside_nowhere = np.ones(len(self.iou_points))
            predicted = winding_sdf(Mesh(vertices, faces), self.iou_points) if len(faces) else inside_nowhere
        return self._score(predicted, vertices, faces)

    def _score(self, predicted: np.ndarray | None, vertices: np.ndarray, faces: np.ndarray) -> dict:
        """Metrics from the (P,) signed values at ``iou_points`` (None: no IoU) and a mesh."""
        metrics = dict.fromkeys(("iou", "iou_inside", "iou_pooled", "iou_uniform", "iou_near"))
        if predicted is not None:
            half = len(self.iou_points) // 2
            metrics["iou"] = sign_iou(predicted, self.iou_sdf, self.iou_weights, inside=False)
            metrics["iou_inside"] = sign_iou(predicted, self.iou_sdf, self.iou_weights)
            metrics["iou_pooled"] = sign_iou(predicted, self.iou_sdf)
            metrics["iou_uniform"] = sign_iou(predicted[:half], self.iou_sdf[:half])
            metrics["iou_near"] = sign_iou(predicted[half:], self.iou_sdf[half:])
        if len(faces) == 0:
            return {
                **metrics,
                "chamfer_l1": None,
                "chamfer_l2": None,
                "nae_deg": None,
                "normal_consistency": None,
                "fscore": 0.0,
            }
        points, normals = sample_surface(vertices, faces, self.samples, seed=1)
        return {**metrics, **surface_metrics(points, normals, self.points, self.normals)}


def _signal(shape: Mesh | PointCloud, name: str, batch: int, seed: int, gradient_step: float | None):
    """The shape's SDF signal; ``gradient_step`` None keeps its kind's default."""
    kind = MeshSDF if isinstance(shape, Mesh) else PointCloudSDF
    signal = kind(shape, name, batch_size=batch, seed=seed)
    if gradient_step is not None:
        signal.gradient_step = gradient_step
    return signal


def shape_mesh(
    field: Callable[[torch.Tensor], torch.Tensor], resolution: int, min_piece_share: float = MIN_PIECE_SHARE
) -> tuple[np.ndarray, np.ndarray]:
    """The field's zero set by chunked marching cubes at resolution^3, without
    pieces under ``min_piece_share`` of the largest piece's area. ``field`` is
    a fitted field (evaluated on its device) or any function from (P, 3) domain
    points on the CPU to P values.

    Returns:
        vertices (V, 3) in domain units and faces (F, 3) int64 (both empty if
        the field has no zero crossing).
    """
    device = field_device(field) if isinstance(field, torch.nn.Module) else torch.device("cpu")
    vertices, faces = extract_mesh(lambda x: field(x).reshape(-1), resolution, device=device)
    kept, faces = drop_small_pieces(vertices, faces, min_piece_share)
    return vertices[kept], faces


def fit_sdf(
    path: str | Path,
    out: str | Path,
    field_name: str = "neurbf",
    params: int | str = "500k",
    train: TrainConfig | None = None,
    mesh_resolution: int = 512,
    batch: int = DEFAULT_BATCH,
    resume: bool = False,
    log=print,
    min_piece_share: float = MIN_PIECE_SHARE,
    gradient_step: float | None = None,
    metric_samples: int = SURFACE_SAMPLES,
    settings: object | None = None,
    overwrite: bool = False,
    device: str | torch.device = "auto",
    normals: str = "auto",
    surface: str = "closed",
    outliers: str = "remove",
    denoise: str = "auto",
) -> dict:
    """Fit one field to a mesh or point cloud; write a complete run folder.

    ``settings`` replaces the preset's default settings (see :func:`rbfield.fields.default_settings`).
    The run is written through a staging folder (:class:`rbfield.runs.RunFolder`): ``out`` changes
    only once the run is complete; a finished run is replaced only with ``overwrite``; ``resume``
    continues from the checkpoint of an interrupted run (kept in the staging folder) or of a finished one.

    ``gradient_step`` is the central-difference step of the loss's gradient
    terms (domain units; 0: exact gradients by a double backward, slower;
    None: exact for a mesh, DIFFERENCE_STEP for a point cloud).
    ``metric_samples`` is the number of surface samples per mesh for the metrics.
    ``device`` is where the field trains, is meshed and is scored ("auto" or a device, see
    :func:`rbfield.tasks.common.resolve_device`); metrics.json records it.
    ``normals`` says where a point cloud's normals come from: "auto" (the file's, else estimated),
    "given" or "estimate" (:mod:`rbfield.geometry.raw_points`); ``outliers`` "keep" skips the
    removal of a point cloud's outliers; ``denoise`` "off" fits noisy points as read.
    ``surface`` "open" trims the mesh to the input (:func:`rbfield.geometry.open_surface.finish_surface`);
    "closed" keeps the field's closed zero set and warns when the input looks open.

    Returns:
        The metrics written to ``metrics.json`` (for a point cloud, ``point_cloud`` says how it was
        cleaned and where its normals came from); ``quality_problem`` says why the result is not
        usable (:func:`quality_problem`), or is None.
    """
    train = train or TrainConfig(steps=DEFAULT_STEPS)
    device = resolve_device(device)
    check_resolution(mesh_resolution)
    check_surface_mode(surface)
    run = RunFolder(out, resume=resume, overwrite=overwrite)
    run.check()
    out = Path(out)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        shape, normalization = load_normalized(path, normals, outliers, denoise)
        signal = _signal(shape, Path(path).name, batch, train.seed, gradient_step)
    for warning in caught:
        log(f"warning: {warning.message}")
    torch.manual_seed(train.seed)
    spec = replace(signal.spec(), context={"normalization": normalization.to_dict()})
    field = build_field(field_name, spec, parse_budget(params), seed=train.seed, settings=settings)
    counts = field.param_counts()
    kind = "mesh" if isinstance(shape, Mesh) else "point cloud"
    log(f"{parameter_summary(field_name, counts)} on {signal.name} ({kind})")
    if resume:
        log_resume(field, run, log)
    with run.writing() as staging:
        atomic_write_json(
            staging / "config.json",
            {
                "field": field.config,
                "train": dict(vars(train)),
                "input": str(path),
                "mesh_resolution": mesh_resolution,
                "batch": batch,
                "gradient_step": signal.gradient_step,
                "surface": surface,
                "point_options": {"normals": normals, "outliers": outliers, "denoise": denoise},
            },
        )
        result = initialize_and_fit(field, signal, train, staging, resume, log, device=device)
        save_field(field, staging)

        started = time.perf_counter()
        vertices, faces = shape_mesh(field, mesh_resolution, min_piece_share)
        vertices, faces, surface_report = finish_surface(
            surface, vertices, faces, shape, mesh_resolution, min_piece_share
        )
        extract_seconds = time.perf_counter() - started
        if hint := open_surface_hint(surface_report):
            log(f"warning: {hint}")
        metrics = Reference(shape, seed=train.seed, samples=metric_samples).score(field, vertices, faces)
        save_mesh(staging / "mesh.ply", normalization.inverse(vertices), faces)
        report = {
            "field": field_name,
            "input": str(path),
            "kind": kind,
            **metrics,
            "trainable_params": counts["trainable"],
            "total_params": counts["total"],
            "steps": result.steps,
            "seconds": round(result.seconds, 2),
            "mesh_resolution": mesh_resolution,
            "mesh_min_piece_share": min_piece_share,
            "mesh_seconds": round(extract_seconds, 2),
            "mesh_faces": int(len(faces)),
            **surface_report,
            "mesh": str(out / "mesh.ply"),
            "checkpoint": str(out / "field.safetensors"),
            "batch": batch,
            "gradient_step": signal.gradient_step,
            "point_cloud": shape.preparation.to_dict() if isinstance(shape, PointCloud) else None,
            "metric_samples": metric_samples,
            "metric_settings": METRIC_SETTINGS,
            **provenance([path], field_device(field)),
            "history": result.history,
        }
        report["quality_problem"] = quality_problem(report)
        save_preview(
            staging / "views.png",
            vertices,
            faces,
            f"{field_name}, {counts['trainable']:,} params, {result.steps} steps: "
            f"IoU {format_metric(metrics['iou'], 4)}",
        )
        atomic_write_json(staging / "metrics.json", report)
    return report


#: A mesh fit whose iou_inside is below this is reported as failed (exit status 3): its inside
#: overlaps the reference's by less than half. Rough test fits of a few hundred steps score 0.75-0.8.
IOU_INSIDE_FLOOR = 0.5


def quality_problem(report: dict) -> str | None:
    """Why a fit's result cannot be relied on (an empty mesh, or iou_inside below
    :data:`IOU_INSIDE_FLOOR`), or None."""
    if report["mesh_faces"] == 0:
        return "the fitted field has no surface (the mesh is empty); train longer or with more --params"
    inside = report.get("iou_inside")
    if inside is not None and inside < IOU_INSIDE_FLOOR:
        return (
            f"iou_inside {inside:.4f} is below the floor of {IOU_INSIDE_FLOOR}: the fit's inside misses most of "
            "the shape's; train longer or with more --params"
        )
    return None


def load_sdf_field(checkpoint: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, Normalization]:
    """Load a fitted SDF field (onto ``device``) and its normalization (input units <-> domain)."""
    field = load_field(checkpoint, device=device, task="sdf")
    config = read_field_config(checkpoint)
    # rbfield 0.1 kept the normalization at the top of the config.
    stored = config["spec"].get("context", {}).get("normalization") or config.get("normalization")
    if stored is None:
        raise RbfieldError(f"{checkpoint}: the field has no normalization; it was not written by 'rbfield fit sdf'")
    return field, Normalization.from_dict(stored)


def run_surface(checkpoint: str | Path) -> tuple[str, str | None, dict]:
    """The surface mode a run was fitted with ("closed" for runs made before there was a choice), its
    input's path (None when its config.json is missing) and how its point cloud was read (the
    ``normals``, ``outliers`` and ``denoise`` of :func:`load_shape`; empty for older runs: the defaults)."""
    config_path = resolve_field_path(checkpoint).parent / "config.json"
    config = json.loads(config_path.read_text()) if config_path.exists() else {}
    return config.get("surface", "closed"), config.get("input"), config.get("point_options", {})


def _same_file(first: str | Path, second: str | Path) -> bool:
    """Whether two paths name one existing file."""
    try:
        return Path(first).samefile(second)
    except OSError:
        return False


def shape_in_domain(path: str | Path, normalization: Normalization, **point_options: str) -> Mesh | PointCloud:
    """A mesh or point cloud in the input's coordinates (read with ``point_options``, see :func:`load_shape`),
    mapped into the domain by ``normalization``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        shape = load_shape(path, **point_options)
    return mapped_into_domain(shape, normalization)


def export_mesh(
    checkpoint: str | Path,
    resolution: int,
    out: str | Path,
    min_piece_share: float = MIN_PIECE_SHARE,
    device: str | torch.device = "auto",
    surface: str | None = None,
) -> tuple[int, int]:
    """Extract a fitted field's mesh at resolution^3, in the input's coordinates.

    ``surface`` "open" trims it to the run's input, "closed" does not; None takes the run's own mode.

    Returns:
        (vertices, faces) counts.
    """
    check_mesh_output(out)
    check_resolution(resolution)
    recorded, input_path, point_options = run_surface(checkpoint)
    surface = check_surface_mode(surface or recorded)
    if surface == "open" and (input_path is None or not Path(input_path).exists()):
        raise RbfieldError(
            f"{checkpoint}: an open surface is trimmed to the run's input, {input_path}, which is missing"
        )
    field, normalization = load_sdf_field(checkpoint, resolve_device(device))
    vertices, faces = shape_mesh(field, resolution, min_piece_share)
    if surface == "open":
        shape = shape_in_domain(input_path, normalization, **point_options)
        vertices, faces, _ = finish_surface(surface, vertices, faces, shape, resolution, min_piece_share)
    if len(faces) == 0:
        raise RbfieldError(f"{checkpoint}: the field has no zero crossing at {resolution}^3; nothing to export")
    save_mesh(out, normalization.inverse(vertices), faces)
    return len(vertices), len(faces)


def evaluate_checkpoint(
    checkpoint: str | Path,
    against: str | Path,
    resolution: int = 512,
    min_piece_share: float = MIN_PIECE_SHARE,
    metric_samples: int = SURFACE_SAMPLES,
    device: str | torch.device = "auto",
    surface: str | None = None,
) -> dict:
    """Metrics of a fitted field against a mesh or point cloud given in the input's
    coordinates (mapped into the domain with the field's own normalization).

    ``surface`` "open" trims the mesh to ``against`` before scoring, "closed" does not; None takes
    the run's own mode. When ``against`` is the run's own input, it is read as the fit read it (its
    recorded ``normals``, ``outliers`` and ``denoise``), so the scores match the run's metrics.json;
    any other file is read with the defaults."""
    check_resolution(resolution)
    recorded, input_path, point_options = run_surface(checkpoint)
    surface = check_surface_mode(surface or recorded)
    field, normalization = load_sdf_field(checkpoint, resolve_device(device))
    own_input = input_path is not None and _same_file(against, input_path)
    shape = shape_in_domain(against, normalization, **(point_options if own_input else {}))
    vertices, faces = shape_mesh(field, resolution, min_piece_share)
    vertices, faces, surface_report = finish_surface(surface, vertices, faces, shape, resolution, min_piece_share)
    return {
        **Reference(shape, samples=metric_samples).score(field, vertices, faces),
        **surface_report,
        "mesh_resolution": resolution,
        "mesh_min_piece_share": min_piece_share,
        "metric_samples": metric_samples,
        "metric_settings": METRIC_SETTINGS,
    }


def compare_sdf(
    path: str | Path,
    out: str | Path,
    field_names: list[str],
    params: int | str,
    train: TrainConfig,
    mesh_resolution: int = 512,
    batch: int = DEFAULT_BATCH,
    log=print,
    min_piece_share: float = MIN_PIECE_SHARE,
    gradient_step: float | None = None,
    metric_samples: int = SURFACE_SAMPLES,
    overwrite: bool = False,
    device: str | torch.device = "auto",
    baseline: str | None = None,
    normals: str = "auto",
    surface: str = "closed",
    outliers: str = "remove",
    denoise: str = "auto",
    poisson_trim: float | None = None,
) -> list[dict]:
    """Fit every named field at one budget and settings; write compare.json/.md.

    Each field's run folder ``out/<field>`` is written as by :func:`fit_sdf`; ``overwrite`` replaces
    finished ones. ``baseline="poisson"`` adds screened Poisson's row and run folder ``out/poisson``
    (:mod:`rbfield.tasks.sdf_poisson`; needs the ``poisson`` extra), trimmed to ``poisson_trim``'s density
    quantile (None: 0.01 for an open surface, nothing for a closed one). Every run folder is checked
    before the first fit starts. ``normals``, ``surface``, ``outliers`` and ``denoise`` are each fit's
    (:func:`fit_sdf`); screened Poisson reads the points as measured (:mod:`rbfield.tasks.sdf_poisson`).
    """
    out = Path(out)
    check_surface_mode(surface)
    if baseline is not None:
        from rbfield.geometry.poisson_baseline import check_trim_quantile
        from rbfield.tasks.sdf_poisson import NAME, fit_poisson, import_open3d, trim_for_surface

        check_trim_quantile(poisson_trim)
        import_open3d()
        RunFolder(out / NAME, overwrite=overwrite).check()
    for name in field_names:
        RunFolder(out / name, overwrite=overwrite).check()
    reports = []
    for name in field_names:
        reports.append(
            fit_sdf(
                path,
                out / name,
                name,
                params,
                train,
                mesh_resolution,
                batch,
                log=log,
                min_piece_share=min_piece_share,
                gradient_step=gradient_step,
                metric_samples=metric_samples,
                overwrite=overwrite,
                device=device,
                normals=normals,
                surface=surface,
                outliers=outliers,
                denoise=denoise,
            )
        )
        log(
            f"{name}: IoU {format_metric(reports[-1]['iou'], 4)} (insides "
            f"{format_metric(reports[-1]['iou_inside'], 4)}), NAE {format_metric(reports[-1]['nae_deg'], 2)} deg "
            f"in {reports[-1]['seconds']:.1f} s"
        )
    if baseline is not None:
        reports.append(
            fit_poisson(
                path,
                out / NAME,
                metric_samples,
                train.seed,
                trim_quantile=trim_for_surface(surface, poisson_trim),
                overwrite=overwrite,
                normals=normals,
                outliers=outliers,
            )
        )
        log(
            f"{NAME}: IoU {format_metric(reports[-1]['iou'], 4)}, NAE {format_metric(reports[-1]['nae_deg'], 2)} deg "
            f"in {reports[-1]['seconds']:.1f} s (depth {reports[-1]['poisson_depth']})"
        )
    rows = [
        "| field | IoU | IoU insides | Chamfer L1 | NAE (deg) | "
        "F-score | trainable params | total params | steps | seconds |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in reports:
        counts = [f"{r[key]:,}" if r[key] is not None else "-" for key in ("trainable_params", "total_params")]
        counts.append("-" if r["steps"] is None else str(r["steps"]))
        rows.append(
            f"| {r['field']} | {format_metric(r['iou'], 4)} | {format_metric(r['iou_inside'], 4)} "
            f"| {format_metric(r['chamfer_l1'], 5)} | {format_metric(r['nae_deg'], 2)} | "
            f"{format_metric(r['fscore'], 4)} | {' | '.join(counts)} | {r['seconds']:.1f} |"
        )
    summary = [{k: v for k, v in r.items() if k not in ("history", "metric_settings")} for r in reports]
    atomic_write_json(
        out / "compare.json",
        {
            "input": str(path),
            "params": parse_budget(params),
            "runs": summary,
            "metric_samples": metric_samples,
            "metric_settings": METRIC_SETTINGS,
        },
    )
    atomic_write_bytes(out / "compare.md", ("\n".join(rows) + "\n").encode())
    return reports


# Commands (their flags are registered by rbfield.commands)


def cmd_fit_sdf(args) -> int:
    """``fit sdf``: exit status 0, or 3 when the result fails :func:`quality_problem` (the run is kept);
    a folder, glob or manifest goes to the dataset runner."""
    if is_dataset(args.path):
        return run_dataset_command(args, "sdf")
    out = Path(args.out or f"runs/{Path(args.path).stem}-{args.field}")
    train, device = train_config(args), resolve_device(args.device)
    with reporting_interrupts(lambda: report_interrupt(out)):
        r = fit_sdf(
            args.path,
            out,
            args.field,
            args.params,
            train,
            args.res,
            args.batch,
            resume=args.resume,
            min_piece_share=args.min_piece,
            gradient_step=args.gradient_step,
            metric_samples=args.metric_samples,
            overwrite=args.overwrite,
            device=device,
            normals=args.normals,
            surface=args.surface,
            outliers=args.outliers,
            denoise=args.denoise,
        )
    print(
        f"{r['field']}: iou {format_metric(r['iou'], 4)}, iou_inside {format_metric(r['iou_inside'], 4)}, "
        f"NAE {format_metric(r['nae_deg'], 2)} deg, Chamfer-L1 {format_metric(r['chamfer_l1'], 5)}, "
        f"F-score {format_metric(r['fscore'], 4)} after {r['steps']} steps in {r['seconds']:.1f} s"
    )
    print(f"results in {out}/ (metrics.json, mesh.ply, views.png, field.safetensors)")
    if r["quality_problem"]:
        print(f"error: the fit failed: {r['quality_problem']} (run kept in {out}/)", file=sys.stderr)
        return FAILED_FIT_STATUS
    return 0


def cmd_export_mesh(args) -> int:
    """``export mesh`` of an SDF field (dispatched here by :mod:`rbfield.tasks.mesh_export`)."""
    res = DEFAULT_RES if args.res is None else args.res
    n_vertices, n_faces = export_mesh(
        args.checkpoint, res, args.out, args.min_piece, resolve_device(args.device), args.surface
    )
    print(f"wrote {args.out} ({n_vertices:,} vertices, {n_faces:,} faces, {res}^3 grid)")
    return 0


def cmd_eval_sdf(args) -> int:

    metrics = evaluate_checkpoint(
        args.checkpoint,
        args.against,
        args.res,
        args.min_piece,
        args.metric_samples,
        resolve_device(args.device),
        args.surface,
    )
    print(json.dumps(metrics, indent=2))
    return 0


def cmd_compare_sdf(args) -> int:
    names = parse_field_names(args.fields, presets_for("sdf"))
    if is_dataset(args.path):
        if args.baseline:
            raise RbfieldError("--baseline takes one input file, not a folder, glob or manifest")
        return run_dataset_command(args, "sdf", names)
    out = Path(args.out or f"runs/compare-{Path(args.path).stem}")
    train, device = train_config(args), resolve_device(args.device)
    with reporting_interrupts(lambda: report_finished_runs(out)):
        compare_sdf(
            args.path,
            out,
            names,
            args.params,
            train,
            args.res,
            args.batch,
            min_piece_share=args.min_piece,
            gradient_step=args.gradient_step,
            metric_samples=args.metric_samples,
            overwrite=args.overwrite,
            device=device,
            baseline=args.baseline,
            normals=args.normals,
            surface=args.surface,
            outliers=args.outliers,
            denoise=args.denoise,
            poisson_trim=args.poisson_trim,
        )
    print((out / "compare.md").read_text(), end="")
    print(f"results in {out}/ (compare.md, compare.json, one run folder per field)")
    return 0
