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

import sys
from pathlib import Path

import numpy as np
import torch

from rbfield.errors import RbfieldError
from rbfield.fields import build_field, parse_budget, presets_for
from rbfield.io import (
    atomic_write_bytes,
    atomic_write_json,
    export_compact,
    load_field,
    save_field,
)
from rbfield.metrics import SSIM_SIGMA, SSIM_WINDOW
from rbfield.plots import save_comparison, save_curves
from rbfield.signals.image import ImageSignal, reconstruct, save_png
from rbfield.tasks.common import (
    TrainingDefaults,
    add_run_arguments,
    add_training_arguments,
    format_metric,
    parse_field_names,
    report_finished_runs,
    report_interrupt,
    reporting_interrupts,
    train_config,
)
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
    prediction = reconstruct(field, signal.width, signal.height).clamp(0, 1)
    metrics = signal.final_metrics(field, prediction)
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
    """Load a fitted image field (a run folder of ``rbfield fit image`` or its field file)."""
    return load_field(checkpoint, task="image")


def parse_size(text: str) -> tuple[int, int]:
    """ "WxH" -> (W, H), both positive."""
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
    return signal.final_metrics(field)


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
            f"| {r['field']} | {r['psnr']:.2f} | {format_metric(r['ssim'], 4)} | {r['trainable_params']:,} | "
            f"{r['total_params']:,} | {r['steps']} | {r['seconds']:.1f} |"
        )
    table = "\n".join(rows)
    summary = [{k: v for k, v in r.items() if k != "history"} for r in reports]
    atomic_write_json(out / "compare.json", {"image": signal.name, "params": parse_budget(params), "runs": summary})
    atomic_write_bytes(out / "compare.md", (table + "\n").encode())
    save_curves(out / "compare.png", {r["field"]: r["history"] for r in reports})
    return reports


# Command line


DEMO_FIELD, DEMO_PARAMS, DEMO_STEPS, DEMO_CROP = "neurbf", "128k", 1000, 256


def _signal(path: str, batch: int):
    from rbfield.signals.image import ImageSignal

    return ImageSignal.from_path(path, batch_size=batch)


TRAINING_DEFAULTS = TrainingDefaults(
    params="128k", steps=2000, batch=2**18, batch_unit="pixels", eval_every=250, eval_what="PSNR evaluations"
)


def _print_report(report: dict, out: Path) -> None:
    ssim = "" if report["ssim"] is None else f", SSIM {report['ssim']:.4f}"
    print(
        f"{report['field']}: PSNR {report['psnr']:.2f} dB{ssim} after {report['steps']} steps in "
        f"{report['seconds']:.1f} s; compact fp16 export {report['compact_bytes']:,} bytes "
        f"({report['bits_per_pixel']:.2f} bits/pixel, {report['psnr_fp16']:.2f} dB)"
    )
    print(f"results in {out}/ (metrics.json, reconstruction.png, comparison.png, psnr_curve.png, field.safetensors)")


def cmd_fit_image(args) -> int:

    signal = _signal(args.path, args.batch)
    out = Path(args.out or f"runs/{Path(args.path).stem}-{args.field}")
    train = train_config(args)
    with reporting_interrupts(lambda: report_interrupt(out)):
        report = fit_image(signal, out, args.field, args.params, train, resume=args.resume)
    _print_report(report, out)
    return 0


def cmd_render_image(args) -> int:

    width, height = parse_size(args.size)
    render_image(args.checkpoint, width, height, args.out, bits=args.bits)
    print(f"wrote {args.out} ({width}x{height}, {args.bits}-bit)")
    return 0


def cmd_eval_image(args) -> int:
    import json

    metrics = evaluate_image(args.checkpoint, _signal(args.path, 2**18))
    print(json.dumps(metrics, indent=2))
    return 0


def cmd_compare_image(args) -> int:
    names = parse_field_names(args.fields, presets_for("image"))
    signal = _signal(args.path, args.batch)
    out = Path(args.out or f"runs/compare-{Path(args.path).stem}")
    with reporting_interrupts(lambda: report_finished_runs(out)):
        compare_images(signal, out, names, args.params, train_config(args))
    print((out / "compare.md").read_text(), end="")
    print(f"results in {out}/ (compare.md, compare.json, compare.png, one run folder per field)")
    return 0


def cmd_demo(args) -> int:
    from skimage import data

    from rbfield.signals.image import ImageSignal, centre_crop, image_to_float
    from rbfield.train import TrainConfig

    photo = data.astronaut()
    signal = ImageSignal(
        image_to_float(centre_crop(photo, DEMO_CROP)),
        name=f"astronaut (scikit-image), centre {DEMO_CROP}x{DEMO_CROP} crop",
    )
    out = Path(args.out)
    print(f"demo: fitting {DEMO_FIELD} ({DEMO_PARAMS} parameters, {args.steps} steps) to {signal.name}")
    train = TrainConfig(steps=args.steps, eval_every=100, progress=not args.quiet)
    with reporting_interrupts(lambda: print(f"\ninterrupted: partial results in {out}/", file=sys.stderr)):
        report = fit_image(signal, out, DEMO_FIELD, DEMO_PARAMS, train)
    _print_report(report, out)
    return 0


def register(verbs: dict, commands) -> None:
    """Add the image commands: ``fit/render/eval/compare image`` and ``demo``.

    Args:
        verbs: {"fit": subparsers, "render": ..., "eval": ..., "compare": ...}.
        commands: the top-level subparsers (for ``demo``).
    """
    fit = verbs["fit"].add_parser("image", help="fit a field to a photo")
    fit.add_argument("path", help="PNG, JPEG or TIFF image (8/16-bit, grey, RGB or RGBA)")
    fit.add_argument("--field", default="neurbf", help=f"one of {', '.join(presets_for('image'))} (default neurbf)")
    add_run_arguments(fit, "runs/<image>-<field>")
    add_training_arguments(fit, TRAINING_DEFAULTS)
    fit.set_defaults(handler=cmd_fit_image)

    render = verbs["render"].add_parser("image", help="sample a fitted image field at any size")
    render.add_argument("checkpoint", help="run folder or field .safetensors")
    render.add_argument("--size", required=True, help="output size WIDTHxHEIGHT")
    render.add_argument("--out", required=True, help="output PNG")
    render.add_argument("--bits", type=int, choices=(8, 16), default=8, help="PNG bit depth (default 8)")
    render.set_defaults(handler=cmd_render_image)

    evaluate = verbs["eval"].add_parser("image", help="PSNR/SSIM of a fitted field against an image")
    evaluate.add_argument("checkpoint", help="run folder or field .safetensors")
    evaluate.add_argument("path", help="the reference image")
    evaluate.set_defaults(handler=cmd_eval_image)

    compare = verbs["compare"].add_parser("image", help="fit several fields to one photo at one budget")
    compare.add_argument("path", help="PNG, JPEG or TIFF image")
    compare.add_argument("--fields", default="neurbf,instant-ngp,siren,ffn", help="comma-separated presets")
    compare.add_argument("--out", help="output folder (default runs/compare-<image>)")
    add_training_arguments(compare, TRAINING_DEFAULTS)
    compare.set_defaults(handler=cmd_compare_image)

    demo = commands.add_parser("demo", help="fit NeuRBF to a built-in photo (scikit-image's astronaut)")
    demo.add_argument("--out", default="runs/demo", help="run folder (default runs/demo)")
    demo.add_argument("--steps", type=int, default=DEMO_STEPS, help=f"training steps (default {DEMO_STEPS})")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(handler=cmd_demo)
