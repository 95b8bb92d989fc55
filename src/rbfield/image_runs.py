"""Image jobs behind the CLI: fit a photo into a run folder, render, evaluate, compare.

A run folder holds::

    config.json               the settings used (field, budget, steps, seed, ...)
    field.safetensors/.json   the fitted field (self-contained; config in metadata)
    field_fp16.safetensors    the compact export (fp16 weights)
    checkpoint.pt             resumable training state
    metrics.json              psnr, ssim, parameter counts, steps, seconds, sizes
    reconstruction.png        the field sampled at the image's size
    comparison.png            target | reconstruction | error map
    psnr_curve.png            PSNR against step
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from rbfield.errors import RbfieldError
from rbfield.fields import build_field, parse_budget
from rbfield.io import atomic_write_bytes, atomic_write_json, export_compact, load_field, save_field
from rbfield.metrics import SSIM_SIGMA, SSIM_WINDOW
from rbfield.plots import save_comparison, save_curves
from rbfield.signals.image import ImageSignal, reconstruct, save_png
from rbfield.train import TrainConfig, initialize_and_fit

METRIC_SETTINGS = {
    "psnr": "dB, images in [0, 1], all pixels and channels, reconstruction clipped to [0, 1]",
    "ssim": f"Gaussian window {SSIM_WINDOW}x{SSIM_WINDOW}, sigma {SSIM_SIGMA}, K1 0.01, K2 0.03, "
    "data range 1, valid region, mean over channels",
    "bits_per_pixel": "compact fp16 export size in bits / (width * height)",
}


def fit_image(
    signal: ImageSignal,
    out: str | Path,
    field_name: str = "neurbf",
    params: int | str = "128k",
    train: TrainConfig | None = None,
    resume: bool = False,
    log=print,
) -> dict:
    """Fit one field to one image and write a complete run folder.

    Args:
        signal: the image.
        out: run folder (created if needed).
        field_name: a preset name.
        params: trainable-parameter budget.
        train: trainer settings (default: 2000 steps).
        resume: continue from ``out/checkpoint.pt``.
        log: where one-line messages go.

    Returns:
        The metrics written to ``metrics.json``.
    """
    train = train or TrainConfig()
    out = Path(out)
    torch.manual_seed(train.seed)
    field = build_field(field_name, signal.spec(), parse_budget(params), seed=train.seed)
    counts = field.param_counts()
    log(
        f"{field_name}: {counts['trainable']:,} trainable + {counts['total'] - counts['trainable']:,} frozen "
        f"parameters on {signal.name} ({signal.width}x{signal.height}x{signal.channels})"
    )
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        out / "config.json",
        {"field": field.config, "train": {k: v for k, v in vars(train).items()}, "image": signal.name},
    )
    result = initialize_and_fit(field, signal, train, out, resume, log)

    save_field(field, out)
    compact_bytes = export_compact(field, out / "field_fp16.safetensors")
    metrics, prediction = signal.final_metrics(field)
    compact_field = load_field(out / "field_fp16.safetensors")
    compact_psnr = signal.evaluate(compact_field)["psnr"]
    report = {
        "field": field_name,
        "image": signal.name,
        "width": signal.width,
        "height": signal.height,
        "channels": signal.channels,
        **metrics,
        "psnr_fp16": compact_psnr,
        "trainable_params": counts["trainable"],
        "total_params": counts["total"],
        "steps": result.steps,
        "seconds": round(result.seconds, 2),
        "compact_bytes": compact_bytes,
        "bits_per_pixel": compact_bytes * 8 / (signal.width * signal.height),
        "checkpoint": str(out / "field.safetensors"),
        "device": str(next(field.parameters()).device),
        "threads": torch.get_num_threads(),
        "metric_settings": METRIC_SETTINGS,
        "history": result.history,
    }
    prediction_np = prediction.cpu().numpy()
    save_png(out / "reconstruction.png", prediction_np)
    title = f"{field_name}, {counts['trainable']:,} params, {result.steps} steps: {metrics['psnr']:.2f} dB"
    save_comparison(out / "comparison.png", signal.pixels.cpu().numpy(), prediction_np, title)
    save_curves(out / "psnr_curve.png", {field_name: result.history})
    atomic_write_json(out / "metrics.json", report)
    return report


def load_image_field(checkpoint: str | Path):
    """Load a fitted field and check it is an image field."""
    field = load_field(checkpoint)
    if field.config["spec"]["task"] != "image":
        raise RbfieldError(f"{checkpoint}: this field was fitted to a {field.config['spec']['task']}, not an image")
    return field


def parse_size(text: str) -> tuple[int, int]:
    """"WxH" -> (W, H), both positive."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise RbfieldError(f"cannot read size {text!r}; write WIDTHxHEIGHT, e.g. 1024x768") from None
    if width <= 0 or height <= 0:
        raise RbfieldError(f"size {text!r} must be positive")
    return width, height


def render_image(checkpoint: str | Path, width: int, height: int, out: str | Path, bits: int = 8) -> np.ndarray:
    """Sample a fitted image field at width x height and write a PNG. Returns (H, W, C)."""
    field = load_image_field(checkpoint)
    pixels = reconstruct(field, width, height).clamp(0, 1).numpy()
    save_png(out, pixels, bits=bits)
    return pixels


def evaluate_image(checkpoint: str | Path, signal: ImageSignal) -> dict:
    """PSNR/SSIM of a fitted field against an image, at the image's size."""
    field = load_image_field(checkpoint)
    fitted_channels = field.config["spec"]["out_dim"]
    if fitted_channels != signal.channels:
        raise RbfieldError(
            f"the field has {fitted_channels} channels but {signal.name} has {signal.channels}; "
            "compare against an image of the same kind"
        )
    metrics, _ = signal.final_metrics(field)
    return metrics


def compare_images(
    signal: ImageSignal, out: str | Path, field_names: list[str], params: int | str, train: TrainConfig, log=print
) -> list[dict]:
    """Fit every named field at the same budget and settings; write a table and a plot.

    Each field gets a full run folder ``out/<field>``; ``out/compare.json``,
    ``out/compare.md`` and ``out/compare.png`` hold the side-by-side results.
    """
    out = Path(out)
    reports = []
    for name in field_names:
        reports.append(fit_image(signal, out / name, name, params, train, log=log))
        log(f"{name}: {reports[-1]['psnr']:.2f} dB in {reports[-1]['seconds']:.1f} s")
    rows = [
        "| field | PSNR (dB) | SSIM | trainable params | total params | steps | seconds |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in reports:
        rows.append(
            f"| {r['field']} | {r['psnr']:.2f} | {r.get('ssim', float('nan')):.4f} | {r['trainable_params']:,} | "
            f"{r['total_params']:,} | {r['steps']} | {r['seconds']:.1f} |"
        )
    table = "\n".join(rows)
    summary = [{k: v for k, v in r.items() if k != "history"} for r in reports]
    atomic_write_json(out / "compare.json", {"image": signal.name, "params": parse_budget(params), "runs": summary})
    atomic_write_bytes(out / "compare.md", (table + "\n").encode())
    save_curves(out / "compare.png", {r["field"]: r["history"] for r in reports})
    return reports
