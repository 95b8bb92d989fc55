"""Scene jobs behind the CLI: fit a radiance field to posed photos, render, export a mesh.

A run folder holds::

    config.json               the settings used (field, budget, scene, steps, ...)
    field.safetensors/.json   the fitted field (config in metadata; occupancy grid included)
    checkpoint.pt             resumable training state
    metrics.json              test-split PSNR/SSIM per view and mean, params, steps, seconds
    renders/                  test views (r_i.png), depth maps (r_i_depth.png, r_i_depth.npy)
    video.mp4 (or .gif)       the test path
    psnr_curve.png            test PSNR (periodic views) against step
"""

from __future__ import annotations

import io
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from rbfield.commands.nerf import DEFAULT_BATCH_RAYS, DEFAULT_MESH_RES, DEFAULT_PARAMS
from rbfield.errors import RbfieldError
from rbfield.fields import build_field, parse_budget
from rbfield.geometry.mesh_pieces import MIN_PIECE_SHARE
from rbfield.geometry.shapes_io import check_mesh_output
from rbfield.io import (
    atomic_write_bytes,
    atomic_write_json,
    load_field,
    save_field,
)
from rbfield.lpips_optional import SETTINGS as LPIPS_SETTINGS
from rbfield.lpips_optional import load_lpips, skipped_message
from rbfield.metrics import SSIM_SIGMA, SSIM_WINDOW
from rbfield.plots import save_curves
from rbfield.runs import RunFolder, check_output_folder, provenance
from rbfield.scenes.dataset import Views, read_split
from rbfield.scenes.mesh import DEFAULT_LEVEL, extract_mesh, save_mesh
from rbfield.scenes.rays import orbit_poses
from rbfield.scenes.render import render_view
from rbfield.scenes.video import write_video
from rbfield.signals.radiance import DEFAULT_BOX, RadianceSignal
from rbfield.tasks.common import (
    log_resume,
    parameter_summary,
    report_interrupt,
    reporting_interrupts,
    resolve_device,
    train_config,
)
from rbfield.train import TrainConfig, field_device, fit

#: Marching step: the box diagonal over this many steps.
STEPS_PER_DIAGONAL = 384
METRIC_SETTINGS = {
    "psnr": "dB per test view on [0, 1] RGB composited on white, then the mean over views",
    "ssim": f"Gaussian window {SSIM_WINDOW}x{SSIM_WINDOW}, sigma {SSIM_SIGMA}, K1 0.01, K2 0.03, data range 1, "
    "mean over channels, per view then the mean",
    "depth_mae": "mean |z-depth - reference z-depth| (scene units) where both are foreground",
}


def lpips_report(metrics: dict, lpips) -> tuple[float | str, dict]:
    """The ``lpips`` entry of metrics.json (mean, or why it was skipped) and the metric settings to store."""
    if lpips is None:
        return skipped_message(), {**METRIC_SETTINGS, "lpips": skipped_message()}
    return metrics["lpips"], {**METRIC_SETTINGS, "lpips": LPIPS_SETTINGS}


def step_size(box: tuple[float, float]) -> float:
    """The marching step (scene units) of a cubic box (low, high)."""
    low, high = box
    return math.sqrt(3.0) * (high - low) / STEPS_PER_DIAGONAL


def _to_png_bytes(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _z_depth(views: Views, index: int, distance: torch.Tensor, opacity: torch.Tensor) -> torch.Tensor:
    """Convert distance along unit rays (H, W) to z-depth along the camera axis; 0 where opacity < 0.5."""
    fx, fy, cx, cy = views.intrinsics[index].tolist()
    rows, columns = torch.meshgrid(torch.arange(views.height), torch.arange(views.width), indexing="ij")
    x = (columns + 0.5 - cx) / fx
    y = (rows + 0.5 - cy) / fy
    z = distance / torch.sqrt(1.0 + x * x + y * y)
    return torch.where(opacity >= 0.5, z, torch.zeros_like(z))


class RenderWriter:
    """Saves rendered views (PNG), depth maps (PNG + .npy) and keeps frames for the video."""

    def __init__(self, folder: Path, views: Views | None, names: list[str]):
        self.folder = folder
        self.views = views
        self.names = names
        self.frames: list[np.ndarray] = []
        self.depth_errors: list[float] = []

    def __call__(self, index: int, rendered: dict) -> None:
        rgb = (rendered["rgb"].numpy() * 255).round().astype(np.uint8)
        self.frames.append(rgb)
        name = self.names[index]
        atomic_write_bytes(self.folder / f"{name}.png", _to_png_bytes(rgb))
        if self.views is not None:
            depth = _z_depth(self.views, index, rendered["depth"], rendered["opacity"]).numpy().astype(np.float32)
        else:
            depth = (rendered["depth"] * (rendered["opacity"] >= 0.5)).numpy().astype(np.float32)
        buffer = io.BytesIO()
        np.save(buffer, depth)
        atomic_write_bytes(self.folder / f"{name}_depth.npy", buffer.getvalue())
        foreground = depth > 0
        low, high = (depth[foreground].min(), depth[foreground].max()) if foreground.any() else (0.0, 1.0)
        # Near is bright, far is dim, background black.
        grey = np.where(foreground, 255 - 200 * (depth - low) / max(high - low, 1e-6), 0).astype(np.uint8)
        atomic_write_bytes(self.folder / f"{name}_depth.png", _to_png_bytes(grey))


def _reference_depth_error(scene: Path, views: Views, folder: Path) -> float | None:
    """Mean |depth - reference| over pixels where both are foreground, if the scene ships test depths."""
    errors = []
    for name in views.names:
        reference_path = scene / "test" / f"{name}_depth.npy"
        ours_path = folder / f"{name}_depth.npy"
        if not reference_path.exists() or not ours_path.exists():
            return None
        reference, ours = np.load(reference_path), np.load(ours_path)
        if reference.shape != ours.shape:
            return None
        both = (reference > 0) & (ours > 0)
        if both.any():
            errors.append(float(np.abs(reference[both] - ours[both]).mean()))
    return float(np.mean(errors)) if errors else None


def camera_config(scene: Path, train: Views, downscale: int) -> dict:
    """What a render needs without the data: image size, intrinsics, camera radius, scene folder."""
    positions = train.poses[:, :3, 3]
    radius = float(positions.norm(dim=-1).mean())
    fx, fy, cx, cy = train.intrinsics[0].tolist()
    return {
        "scene": str(scene.resolve()),
        "downscale": downscale,
        "width": train.width,
        "height": train.height,
        "fx": fx,
        "fy": fy,
        "cx": cx,
        "cy": cy,
        "radius": radius,
    }


def fit_scene(
    scene: str | Path,
    out: str | Path,
    field_name: str = "neurbf",
    params: int | str = DEFAULT_PARAMS,
    train: TrainConfig | None = None,
    downscale: int = 1,
    batch_rays: int = DEFAULT_BATCH_RAYS,
    resume: bool = False,
    video: bool = True,
    log=print,
    overwrite: bool = False,
    device: str | torch.device = "auto",
) -> dict:
    """Fit a radiance field to a scene and write a complete run folder.

    The run is written through a staging folder (:class:`rbfield.runs.RunFolder`): ``out`` changes
    only once the run is complete; a finished run is replaced only with ``overwrite``; ``resume``
    continues from the checkpoint of an interrupted run (kept in the staging folder) or of a finished one.

    Args:
        scene: a Blender-format (or nerfstudio) scene folder.
        out: run folder.
        field_name: "instant-ngp", "tensorf" or "neurbf".
        params: trainable-parameter budget.
        train: trainer settings (default 2000 steps).
        downscale: integer image downscale.
        batch_rays: rays per step.
        resume: continue from the run's checkpoint (see above).
        video: write the test-path video.
        overwrite: replace a finished run.
        device: where the field trains and renders, "auto" or a device (see
            :func:`~rbfield.tasks.common.resolve_device`); metrics.json records it.

    Returns:
        The metrics written to ``metrics.json``.
    """
    train = train or TrainConfig()
    device = resolve_device(device)
    scene, out = Path(scene), Path(out)
    run = RunFolder(out, resume=resume, overwrite=overwrite)
    run.check()
    train_views = read_split(scene, "train", downscale)
    test_views = read_split(scene, "test", downscale)
    lpips = load_lpips()  # before training, so a broken weights file stops the run at once
    warmup = max(1, round(0.15 * train.steps)) if train.steps else 500
    signal = RadianceSignal(
        train_views,
        test_views,
        step_size(DEFAULT_BOX),
        batch_rays,
        eval_views=(0, test_views.count // 2),
        rbf_warmup_steps=warmup,
        camera=camera_config(scene, train_views, downscale),
    )
    field = build_field(field_name, signal.spec(), parse_budget(params), seed=train.seed)
    counts = field.param_counts()
    log(
        f"{parameter_summary(field_name, counts)} "
        f"(+ {counts['acceleration']:,} occupancy cells) on {scene.name}: {train_views.count} training views of "
        f"{train_views.width}x{train_views.height}, {test_views.count} test views"
    )
    if resume:
        log_resume(field, run, log)
    with run.writing() as staging:
        atomic_write_json(
            staging / "config.json",
            {
                "field": field.config,
                "train": dict(vars(train)),
                "scene": str(scene),
                "downscale": downscale,
                "batch_rays": batch_rays,
                "rbf_warmup_steps": warmup,
            },
        )
        torch.manual_seed(train.seed)
        result = fit(field.to(device), signal, train, run_dir=staging, resume=resume)
        save_field(field, staging)

        started = time.perf_counter()
        writer = RenderWriter(staging / "renders", test_views, test_views.names)
        metrics = signal.final_metrics(field, on_view=writer, lpips=lpips)
        render_seconds = time.perf_counter() - started
        lpips_value, settings = lpips_report(metrics, lpips)
        depth_error = _reference_depth_error(scene, test_views, staging / "renders")
        video_path = write_video(staging / "video", np.stack(writer.frames), fps=12) if video else None
        report = {
            "method": field_name,
            "scene": str(scene),
            "checkpoint": str(out / "field.safetensors"),
            "width": test_views.width,
            "height": test_views.height,
            "train_views": train_views.count,
            "test_views": test_views.count,
            "psnr": metrics["psnr"],
            "ssim": metrics["ssim"],
            "lpips": lpips_value,
            "depth_mae": depth_error,
            "per_view": metrics["per_view"],
            "trainable_params": counts["trainable"],
            "total_params": counts["total"],
            "occupancy_cells": counts["acceleration"],
            "steps": result.steps,
            "seconds": round(result.seconds, 2),
            "render_seconds_per_view": round(render_seconds / test_views.count, 3),
            "batch_rays": batch_rays,
            "video": str(out / video_path.name) if video_path else None,
            "metric_settings": settings,
            **provenance([scene], field_device(field)),
            "history": result.history,
        }
        save_curves(staging / "psnr_curve.png", {field_name: result.history})
        atomic_write_json(staging / "metrics.json", report)
    return report


def load_radiance_field(checkpoint: str | Path, device: str | torch.device = "cpu"):
    """Load a fitted scene field (a run folder of ``rbfield fit nerf`` or its field file) onto ``device``."""
    return load_field(checkpoint, device=device, task="radiance")


def render_scene(
    checkpoint: str | Path,
    out: str | Path,
    split: str | None = "test",
    orbit: int | None = None,
    data: str | Path | None = None,
    fps: int = 12,
    device: str | torch.device = "auto",
) -> dict:
    """Render a fitted field: a split of its scene (with metrics) or an orbit of ``orbit`` frames.

    Writes PNGs, depth maps and a video into ``out``; returns a summary.
    """
    out = Path(out)
    check_output_folder(out)
    if orbit is not None and orbit < 2:
        raise RbfieldError(f"--orbit needs at least 2 frames, got {orbit}")
    field = load_radiance_field(checkpoint, resolve_device(device))
    context = field.config["spec"]["context"]
    camera = context["camera"]
    size = step_size(context["box"])
    if orbit is not None:
        intrinsics = torch.tensor([camera["fx"], camera["fy"], camera["cx"], camera["cy"]])
        names = [f"orbit_{i:03d}" for i in range(orbit)]
        writer = RenderWriter(out, None, names)
        for index, pose in enumerate(orbit_poses(orbit, camera["radius"], 30.0)):
            writer(index, render_view(field, pose, intrinsics, camera["width"], camera["height"], size))
        video = write_video(out / "video", np.stack(writer.frames), fps=fps)
        return {"frames": orbit, "video": str(video)}
    scene = Path(data or camera["scene"])
    views = read_split(scene, split, camera.get("downscale", 1))
    writer = RenderWriter(out, views, views.names)
    summary = split_metrics(field, scene, views, split, size, writer)
    video = write_video(out / "video", np.stack(writer.frames), fps=fps)
    summary["video"] = str(video)
    atomic_write_json(out / "metrics.json", summary)
    return summary


def split_metrics(field, scene: Path, views: Views, split: str, size: float, on_view) -> dict:
    """PSNR/SSIM (and LPIPS when its weights are present) of every view of a split, with provenance."""
    lpips = load_lpips()
    signal = RadianceSignal(views, views, size)
    metrics = signal.final_metrics(field, on_view=on_view, lpips=lpips)
    lpips_value, settings = lpips_report(metrics, lpips)
    return {
        "split": split,
        "scene": str(scene),
        "views": views.count,
        "psnr": metrics["psnr"],
        "ssim": metrics["ssim"],
        "lpips": lpips_value,
        "per_view": metrics["per_view"],
        "metric_settings": settings,
        **provenance([scene], field_device(field)),
    }


def evaluate_scene(
    checkpoint: str | Path,
    split: str = "test",
    data: str | Path | None = None,
    out: str | Path | None = None,
    device: str | torch.device = "auto",
) -> dict:
    """Metrics of a fitted scene field on a split of its scene (or of ``data``), without writing
    anything unless ``out`` is given (then the renders, depth maps and metrics.json go there)."""
    if out is not None:
        check_output_folder(out)
    field = load_radiance_field(checkpoint, resolve_device(device))
    context = field.config["spec"]["context"]
    camera = context["camera"]
    scene = Path(data or camera["scene"])
    views = read_split(scene, split, camera.get("downscale", 1))
    writer = RenderWriter(Path(out), views, views.names) if out is not None else None
    summary = split_metrics(field, scene, views, split, step_size(context["box"]), writer)
    if out is not None:
        atomic_write_json(Path(out) / "metrics.json", summary)
    return summary


def export_scene_mesh(
    checkpoint: str | Path,
    resolution: int,
    out: str | Path,
    level: float = DEFAULT_LEVEL,
    fill: bool = True,
    min_piece_share: float = MIN_PIECE_SHARE,
    device: str | torch.device = "auto",
) -> tuple[int, int]:
    """Coloured mesh (.ply, .obj or .glb) of a radiance field's surface (:func:`extract_mesh`); returns
    (vertices, faces). The extension is checked before any work."""
    check_mesh_output(out)
    field = load_radiance_field(checkpoint, resolve_device(device))
    vertices, faces, colours = extract_mesh(field, resolution, level, fill, min_piece_share)
    save_mesh(out, vertices, faces, colours)
    return len(vertices), len(faces)


# Commands (their flags are registered by rbfield.commands)


def cmd_fit_nerf(args) -> int:
    train, device = train_config(args), resolve_device(args.device)
    out = Path(args.out or f"runs/{Path(args.scene).name}-{args.field}")
    with reporting_interrupts(lambda: report_interrupt(out)):
        report = fit_scene(
            args.scene,
            out,
            args.field,
            args.params,
            train,
            args.downscale,
            args.batch,
            resume=args.resume,
            video=not args.no_video,
            overwrite=args.overwrite,
            device=device,
        )
    lpips = report["lpips"] if isinstance(report["lpips"], str) else f"{report['lpips']:.4f}"
    print(
        f"{report['method']}: test PSNR {report['psnr']:.2f} dB, SSIM "
        f"{report['ssim']:.4f} over {report['test_views']} views "
        f"after {report['steps']} steps in {report['seconds']:.1f} s; LPIPS {lpips}"
    )
    print(
        f"results in {out}/ (metrics.json, renders/, "
        f"{Path(report['video']).name if report['video'] else 'no video'}, field.safetensors)"
    )
    return 0


def cmd_render_nerf(args) -> int:
    device = resolve_device(args.device)
    summary = render_scene(args.checkpoint, args.out, split=args.split, orbit=args.orbit, data=args.data, device=device)
    if "psnr" in summary:
        print(
            f"{summary['split']}: PSNR {summary['psnr']:.2f} dB, SSIM {summary['ssim']:.4f}; video {summary['video']}"
        )
    else:
        print(f"{summary['frames']} orbit frames in {args.out}/; video {summary['video']}")
    return 0


def cmd_eval_nerf(args) -> int:
    """``eval nerf``: a split's metrics as JSON on stdout; renders only with ``--out``."""
    summary = evaluate_scene(args.checkpoint, args.split, args.data, args.out, resolve_device(args.device))
    print(json.dumps({key: value for key, value in summary.items() if key != "per_view"}, indent=2))
    return 0


def cmd_export_mesh(args) -> int:
    """``export mesh`` of a scene field (dispatched here by :mod:`rbfield.tasks.mesh_export`)."""
    res = DEFAULT_MESH_RES if args.res is None else args.res
    n_vertices, n_faces = export_scene_mesh(
        args.checkpoint,
        res,
        args.out,
        args.level,
        fill=not args.no_fill,
        min_piece_share=args.min_piece,
        device=resolve_device(args.device),
    )
    print(f"wrote {args.out} ({n_vertices:,} vertices, {n_faces:,} faces, vertex colours)")
    return 0
