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

from rbfield.errors import RbfieldError
from rbfield.fields import parse_budget
from rbfield.geometry.mesh_pieces import MIN_PIECE_SHARE
from rbfield.io import atomic_write_bytes, atomic_write_json, load_field, resolve_field_path, save_field
from rbfield.lpips_optional import SETTINGS as LPIPS_SETTINGS, load_lpips, skipped_message
from rbfield.metrics import SSIM_SIGMA, SSIM_WINDOW
from rbfield.plots import save_curves
from rbfield.radiance.dataset import Views, read_split
from rbfield.radiance.fields import RADIANCE_KIND, build_radiance_field
from rbfield.radiance.mesh import DEFAULT_LEVEL, extract_mesh, save_mesh
from rbfield.radiance.rays import orbit_poses
from rbfield.radiance.render import render_view
from rbfield.radiance.signal import RadianceSignal
from rbfield.radiance.video import write_video
from rbfield.train import TrainConfig, fit

#: Marching step: the box diagonal over this many steps.
STEPS_PER_DIAGONAL = 384
DEFAULT_PARAMS = "1M"
DEFAULT_BATCH_RAYS = 4096
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


def step_size(config: dict) -> float:
    low, high = config["box"]
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
    return {"scene": str(scene.resolve()), "downscale": downscale, "width": train.width, "height": train.height,
            "fx": fx, "fy": fy, "cx": cx, "cy": cy, "radius": radius}


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
) -> dict:
    """Fit a radiance field to a scene and write a complete run folder.

    Args:
        scene: a Blender-format (or nerfstudio) scene folder.
        out: run folder.
        field_name: "instant-ngp", "tensorf" or "neurbf".
        params: trainable-parameter budget.
        train: trainer settings (default 2000 steps).
        downscale: integer image downscale.
        batch_rays: rays per step.
        resume: continue from ``out/checkpoint.pt``.
        video: write the test-path video.

    Returns:
        The metrics written to ``metrics.json``.
    """
    train = train or TrainConfig()
    scene, out = Path(scene), Path(out)
    train_views = read_split(scene, "train", downscale)
    test_views = read_split(scene, "test", downscale)
    lpips = load_lpips()  # before training, so a broken weights file stops the run at once
    field = build_radiance_field(field_name, parse_budget(params), seed=train.seed,
                                 camera=camera_config(scene, train_views, downscale))
    counts = field.param_counts()
    log(f"{field_name}: {counts['trainable']:,} trainable + {counts['total'] - counts['trainable']:,} frozen parameters "
        f"(+ {counts['occupancy_cells']:,} occupancy cells) on {scene.name}: {train_views.count} training views of "
        f"{train_views.width}x{train_views.height}, {test_views.count} test views")
    warmup = max(1, round(0.15 * train.steps)) if train.steps else 500
    signal = RadianceSignal(train_views, test_views, step_size(field.config), batch_rays,
                            eval_views=(0, test_views.count // 2), rbf_warmup_steps=warmup)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "config.json", {"field": field.config, "train": dict(vars(train)), "scene": str(scene),
                                            "downscale": downscale, "batch_rays": batch_rays, "rbf_warmup_steps": warmup})
    torch.manual_seed(train.seed)
    result = fit(field, signal, train, run_dir=out, resume=resume)
    save_field(field, out)

    started = time.perf_counter()
    writer = RenderWriter(out / "renders", test_views, test_views.names)
    metrics = signal.final_metrics(field, on_view=writer, lpips=lpips)
    render_seconds = time.perf_counter() - started
    lpips_value, settings = lpips_report(metrics, lpips)
    depth_error = _reference_depth_error(scene, test_views, out / "renders")
    video_path = write_video(out / "video", np.stack(writer.frames), fps=12) if video else None
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
        "occupancy_cells": counts["occupancy_cells"],
        "steps": result.steps,
        "seconds": round(result.seconds, 2),
        "render_seconds_per_view": round(render_seconds / test_views.count, 3),
        "batch_rays": batch_rays,
        "video": str(video_path) if video_path else None,
        "threads": torch.get_num_threads(),
        "device": "cpu",
        "metric_settings": settings,
        "history": result.history,
    }
    save_curves(out / "psnr_curve.png", {field_name: result.history})
    atomic_write_json(out / "metrics.json", report)
    return report


def read_field_config(checkpoint: str | Path) -> dict | None:
    """The JSON config stored in a field file, or None if it is not readable."""
    from safetensors import safe_open

    try:
        with safe_open(str(resolve_field_path(checkpoint)), framework="pt") as handle:
            return json.loads((handle.metadata() or {})["rbfield_config"])
    except RbfieldError:
        raise
    except Exception:  # not a safetensors file, or no rbfield config: the caller decides
        return None


def is_radiance_checkpoint(checkpoint: str | Path) -> bool:
    config = read_field_config(checkpoint)
    return bool(config) and config.get("kind") == RADIANCE_KIND


def load_radiance_field(checkpoint: str | Path):
    """Load a fitted field and check it is a radiance field."""
    if not is_radiance_checkpoint(checkpoint):
        raise RbfieldError(f"{checkpoint}: not a radiance field; pass the run folder of `rbfield fit nerf`")
    return load_field(checkpoint)


def render_scene(checkpoint: str | Path, out: str | Path, split: str | None = "test", orbit: int | None = None,
                 data: str | Path | None = None, fps: int = 12) -> dict:
    """Render a fitted field: a split of its scene (with metrics) or an orbit of ``orbit`` frames.

    Writes PNGs, depth maps and a video into ``out``; returns a summary.
    """
    field = load_radiance_field(checkpoint)
    camera = field.config["camera"]
    out = Path(out)
    size = step_size(field.config)
    if orbit is not None:
        if orbit < 2:
            raise RbfieldError(f"--orbit needs at least 2 frames, got {orbit}")
        intrinsics = torch.tensor([camera["fx"], camera["fy"], camera["cx"], camera["cy"]])
        names = [f"orbit_{i:03d}" for i in range(orbit)]
        writer = RenderWriter(out, None, names)
        for index, pose in enumerate(orbit_poses(orbit, camera["radius"], 30.0)):
            writer(index, render_view(field, pose, intrinsics, camera["width"], camera["height"], size))
        video = write_video(out / "video", np.stack(writer.frames), fps=fps)
        return {"frames": orbit, "video": str(video)}
    scene = Path(data or camera["scene"])
    views = read_split(scene, split, camera.get("downscale", 1))
    lpips = load_lpips()
    signal = RadianceSignal(views, views, size)
    writer = RenderWriter(out, views, views.names)
    metrics = signal.final_metrics(field, on_view=writer, lpips=lpips)
    video = write_video(out / "video", np.stack(writer.frames), fps=fps)
    lpips_value, settings = lpips_report(metrics, lpips)
    summary = {"split": split, "scene": str(scene), "psnr": metrics["psnr"], "ssim": metrics["ssim"],
               "lpips": lpips_value, "per_view": metrics["per_view"], "video": str(video), "metric_settings": settings}
    atomic_write_json(out / "metrics.json", summary)
    return summary


def export_scene_mesh(checkpoint: str | Path, resolution: int, out: str | Path, level: float = DEFAULT_LEVEL,
                      fill: bool = True, min_piece_share: float = MIN_PIECE_SHARE) -> tuple[int, int]:
    """Coloured mesh of a radiance field's surface (:func:`extract_mesh`); returns (vertices, faces)."""
    field = load_radiance_field(checkpoint)
    vertices, faces, colours = extract_mesh(field, resolution, level, fill, min_piece_share)
    save_mesh(out, vertices, faces, colours)
    return len(vertices), len(faces)
