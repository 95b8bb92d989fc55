"""Image jobs behind the CLI: fit a photo into a run folder, render, evaluate, compare.

A run folder holds::

    config.json               the settings used (field, budget, steps, seed, ...)
    field.safetensors/.json   the fitted field (self-contained; config in metadata)
    field_fp16.safetensors    the compact export (fp16 weights)
    checkpoint.pt             resumable training state
    metrics.json              psnr, ssim, parameter counts, steps, sizes, where time and memory went
    reconstruction.png        the field sampled at the image's size (8-bit), or above
                              TIFF_ABOVE_PIXELS pixels reconstruction.tif, a tiled pyramidal BigTIFF
    comparison.png            target | reconstruction | error map; for images wider or taller than
                              OVERVIEW_SIDE, a block-averaged overview and full-resolution crops
    psnr_curve.png            PSNR against step (on a fixed pixel subset above 2^16 pixels)

Nothing is held per pixel beyond the image itself (1-2 bytes a value): the
final metrics render the field tile by tile, keeping each tile's 8-bit render
in a temporary memory-mapped file in the run folder, from which the
reconstruction and the comparison are written afterwards, so the field is
rendered once. Rendering (``render image``) streams the same way.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from rbfield.commands.image import MAX_RENDER_SIDE
from rbfield.datasets import is_dataset
from rbfield.datasets.command import run_dataset_command
from rbfield.errors import RbfieldError
from rbfield.fields import build_field, parse_budget, presets_for
from rbfield.io import (
    atomic_write_bytes,
    atomic_write_json,
    export_compact,
    load_field,
    read_field_config,
    save_field,
)
from rbfield.metrics import SSIM_SIGMA, SSIM_WINDOW
from rbfield.ops import return_freed_memory
from rbfield.plots import save_comparison, save_curves
from rbfield.raster.grid import Predictor, field_predictor, parse_region
from rbfield.raster.overview import OVERVIEW_SIDE, save_overview
from rbfield.raster.spill import SpillArray
from rbfield.raster.store import PixelStore
from rbfield.raster.tiled_metrics import SUBSET_PIXELS
from rbfield.raster.writers import recording, write_png, write_tiled_tiff
from rbfield.runs import RunFolder, check_output_file, provenance
from rbfield.signals.image import ImageSignal
from rbfield.spec import SignalSpec
from rbfield.tasks.common import (
    format_metric,
    log_resume,
    parameter_summary,
    parse_bytes,
    parse_field_names,
    peak_rss_bytes,
    report_finished_runs,
    report_interrupt,
    reporting_interrupts,
    resolve_device,
    train_config,
)
from rbfield.train import TrainConfig, field_device, initialize_and_fit

#: Above this many pixels ``fit image`` writes reconstruction.tif (tiled, pyramidal BigTIFF) instead of a PNG.
TIFF_ABOVE_PIXELS = 2**24
#: Most pixels one ``render image`` writes (4.3 gigapixels: about an hour of rendering on 2 cores);
#: larger outputs are rendered as several --region calls.
MAX_RENDER_PIXELS = 2**32

METRIC_SETTINGS = {
    "psnr": "dB, images in [0, 1], all pixels and channels, reconstruction clipped to [0, 1]",
    "ssim": f"Gaussian window {SSIM_WINDOW}x{SSIM_WINDOW}, sigma {SSIM_SIGMA}, K1 0.01, K2 0.03, "
    "data range 1, valid region, mean over channels",
    "psnr_subset": f"PSNR in the history of images above {SUBSET_PIXELS} pixels: on a fixed random subset "
    f"of {SUBSET_PIXELS} pixels (whole-image key psnr below that); psnr_fp16(_subset) likewise",
    "bits_per_pixel": "compact fp16 export size in bits / (width * height)",
    "seconds": "setup_seconds: reading the image (load_seconds) and placing RBFs (rbf_init_seconds); "
    "train_seconds: the steps (= seconds); eval_seconds: final metrics over the whole image (rendering it) "
    "and the fp16 check; output_seconds: writing reconstruction, comparison and curve",
    "peak_rss_bytes": "the process's peak resident memory (getrusage ru_maxrss) when metrics.json was written",
}


def fit_image(
    signal: ImageSignal,
    out: str | Path,
    field_name: str = "neurbf",
    params: int | str = "128k",
    train: TrainConfig | None = None,
    resume: bool = False,
    log=print,
    overwrite: bool = False,
    device: str | torch.device = "auto",
    inputs: tuple = (),
) -> dict:
    """Fit one field to one image and write a complete run folder.

    The run is written through a staging folder (:class:`rbfield.runs.RunFolder`): ``out`` changes
    only once the run is complete; a finished run is replaced only with ``overwrite``.

    Args:
        signal: the image.
        out: run folder (created if needed).
        field_name: a preset name.
        params: trainable-parameter budget.
        train: trainer settings (default: 2000 steps).
        resume: continue from the checkpoint of an interrupted (or finished) run in ``out``.
        log: where one-line messages go.
        overwrite: replace a finished run in ``out``.
        device: where the field trains, "auto" or a device (see :func:`~rbfield.tasks.common.resolve_device`);
            the final render runs there too, and metrics.json records it.
        inputs: the input files, hashed into metrics.json's provenance.

    Returns:
        The metrics written to ``metrics.json``.
    """
    train = train or TrainConfig()
    device = resolve_device(device)
    torch.manual_seed(train.seed)
    field = build_field(field_name, signal.spec(), parse_budget(params), seed=train.seed)  # bad flags first
    run = RunFolder(out, resume=resume, overwrite=overwrite)
    run.check()
    out = Path(out)
    counts = field.param_counts()
    log(f"{parameter_summary(field_name, counts)} on {signal.name} ({signal.width}x{signal.height}x{signal.channels})")
    if resume:
        log_resume(field, run, log)
    with run.writing() as staging:
        atomic_write_json(
            staging / "config.json",
            {"field": field.config, "train": dict(vars(train)), "image": signal.name},
        )
        result = initialize_and_fit(field, signal.to(device), train, staging, resume, log, device=device)
        report = _finish_image_run(signal, field, field_name, counts, result, staging, out)
        report.update(provenance(inputs, field_device(field)))
        report["peak_rss_bytes"] = peak_rss_bytes()
        atomic_write_json(staging / "metrics.json", report)
    return report


def _finish_image_run(signal: ImageSignal, field, field_name: str, counts: dict, result, staging: Path, out: Path):
    """Save the fitted field, score it and write the run's pictures into ``staging``; returns the report
    (its paths name ``out``, where the run will live)."""
    save_field(field, staging)
    compact_bytes = export_compact(field, staging / "field_fp16.safetensors")
    return_freed_memory()
    description = f"{field_name}, {counts['trainable']:,} params, {result.steps} steps"
    metrics, reconstruction, eval_seconds, output_seconds = score_and_write(signal, field, staging, description)
    started = time.perf_counter()
    save_curves(staging / "psnr_curve.png", {field_name: result.history}, metric=curve_metric(result.history))
    output_seconds += time.perf_counter() - started
    return {
        "field": field_name,
        "image": signal.name,
        "width": signal.width,
        "height": signal.height,
        "channels": signal.channels,
        "pixels": signal.n_pixels,
        **metrics,
        "trainable_params": counts["trainable"],
        "total_params": counts["total"],
        "steps": result.steps,
        "seconds": round(result.seconds, 2),
        "setup_seconds": round(signal.load_seconds + result.init_seconds, 2),
        "load_seconds": round(signal.load_seconds, 2),
        "rbf_init_seconds": round(result.init_seconds, 2),
        "train_seconds": round(result.seconds, 2),
        "eval_seconds": round(eval_seconds, 2),
        "output_seconds": round(output_seconds, 2),
        "compact_bytes": compact_bytes,
        "bits_per_pixel": compact_bytes * 8 / (signal.width * signal.height),
        "checkpoint": str(out / "field.safetensors"),
        "reconstruction": reconstruction.name,
        "metric_settings": METRIC_SETTINGS,
        "history": result.history,
    }


def score_and_write(signal: ImageSignal, field, out: Path, description: str) -> tuple[dict, Path, float, float]:
    """Render the fitted field once, tile by tile, for the final metrics, then write
    the reconstruction and the comparison from that render.

    The 8-bit render waits in a temporary file in ``out``
    (:class:`~rbfield.raster.spill.SpillArray`), read and written by region,
    so it never counts in the process's memory. The fp16 export (``out/field_fp16.safetensors``) is checked with
    the signal's quick evaluation (key ``psnr_fp16``, or ``psnr_fp16_subset``).

    Returns:
        The metrics, the reconstruction's path, and the seconds spent scoring and writing.
    """
    started = time.perf_counter()
    with SpillArray(out, (signal.height, signal.width, signal.channels), np.uint8) as rendered:
        metrics = signal.final_metrics(field, recording(field_predictor(field, signal.width, signal.height), rendered))
        compact = signal.evaluate(load_field(out / "field_fp16.safetensors"))
        metrics.update({key.replace("psnr", "psnr_fp16"): value for key, value in compact.items()})
        eval_seconds = time.perf_counter() - started
        started = time.perf_counter()
        reconstruction = write_reconstruction(out, PixelStore(rendered))
        title = f"{description}: {metrics['psnr']:.2f} dB"
        save_comparison_figure(out / "comparison.png", signal.store, PixelStore(rendered).read_float, title)
    return metrics, reconstruction, eval_seconds, time.perf_counter() - started


def curve_metric(history: list[dict]) -> str:
    """The PSNR key a run's history holds: "psnr" (whole image) or "psnr_subset"."""
    return "psnr" if "psnr" in history[-1] else "psnr_subset"


def write_reconstruction(out: Path, rendered: PixelStore) -> Path:
    """Write a run's rendered reconstruction: ``reconstruction.png``, or above
    TIFF_ABOVE_PIXELS pixels ``reconstruction.tif`` (tiled pyramidal BigTIFF). Returns the path."""
    size = (rendered.width, rendered.height, rendered.channels)
    if rendered.n_pixels > TIFF_ABOVE_PIXELS:
        path = out / "reconstruction.tif"
        write_tiled_tiff(path, rendered.read_float, *size)
    else:
        path = out / "reconstruction.png"
        write_png(path, rendered.read_float, *size)
    return path


def save_comparison_figure(path: Path, target: PixelStore, predict: Predictor, title: str) -> None:
    """Target | reconstruction | error at full resolution when the image fits
    OVERVIEW_SIDE, else the overview with full-resolution crops."""
    if max(target.width, target.height) > OVERVIEW_SIDE:
        save_overview(path, target, predict, title)
        return
    whole = (0, 0, target.width, target.height)
    save_comparison(path, target.read_float(*whole), np.asarray(predict(*whole)), title)


def load_image_field(checkpoint: str | Path, device: str | torch.device = "cpu"):
    """Load a fitted image field (a run folder of ``rbfield fit image`` or its field file) onto ``device``."""
    return load_field(checkpoint, device=device, task="image")


def parse_size(text: str) -> tuple[int, int]:
    """ "WxH" -> (W, H), both positive."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise RbfieldError(f"cannot read size {text!r}; write WIDTHxHEIGHT, e.g. 1024x768") from None
    if width <= 0 or height <= 0:
        raise RbfieldError(f"size {text!r} must be positive")
    return width, height


def check_render_size(width: int, height: int, region: tuple[int, int, int, int] | None = None) -> None:
    """Refuse a ``--size`` beyond what float32 coordinates resolve (MAX_RENDER_SIDE), or an output
    (the region, if given) of more than MAX_RENDER_PIXELS pixels."""
    _, _, w, h = region or (0, 0, width, height)
    if w * h > MAX_RENDER_PIXELS:
        raise RbfieldError(
            f"a {w}x{h} render is {w * h / 1e9:.1f} gigapixels, over the {MAX_RENDER_PIXELS / 1e9:.1f} one command "
            "writes; render it as several --region x,y,w,h parts"
        )
    if max(width, height) > MAX_RENDER_SIDE:
        raise RbfieldError(
            f"size {width}x{height}: sides above {MAX_RENDER_SIDE:,} pixels fall between the field's float32 "
            "coordinates; render a smaller size, or a --region of it"
        )


def check_disk_space(out: Path, width: int, height: int, channels: int, bits: int, tiff: bool) -> None:
    """Refuse a render whose uncompressed size (plus the pyramid's spilled levels,
    a third more, for TIFF) exceeds the free space where it is written."""
    needed = width * height * channels * bits // 8 * (4 if tiff else 3) // 3
    free = shutil.disk_usage(out.parent if out.parent.exists() else Path.cwd()).free
    if needed > free:
        raise RbfieldError(
            f"{out}: a {width}x{height} render takes up to {needed / 1e9:.2f} GB uncompressed and "
            f"{free / 1e9:.2f} GB are free there; render a --region or write elsewhere"
        )


def render_image(
    checkpoint: str | Path,
    width: int,
    height: int,
    out: str | Path,
    bits: int = 8,
    region: tuple[int, int, int, int] | None = None,
    device: str | torch.device = "auto",
) -> tuple[int, int]:
    """Sample a fitted image field on a width x height grid, or a region of it, into a file.

    Rendered a band (PNG) or a tile (TIFF) at a time, so memory does not grow
    with the output.

    Args:
        checkpoint: a run folder or field file.
        width, height: the output grid.
        out: a ``.png`` file, or ``.tif``/``.tiff`` for a tiled pyramidal BigTIFF.
        bits: 8 or 16 bits per value.
        region: (x, y, w, h) of the grid to write (default: all of it).
        device: where the field is evaluated, "auto" or a device (see :func:`~rbfield.tasks.common.resolve_device`).

    Returns:
        The written image's (width, height).

    Raises:
        RbfieldError: a size beyond MAX_RENDER_SIDE, a region outside the grid,
            or too little disk space for the output.
    """
    check_render_size(width, height, region)
    check_output_file(out)
    x, y, w, h = region or (0, 0, width, height)
    out = Path(out)
    tiff = out.suffix.lower() in (".tif", ".tiff")
    field = load_image_field(checkpoint, resolve_device(device))
    channels = field.config["spec"]["out_dim"]
    check_disk_space(out, w, h, channels, bits, tiff)
    grid = field_predictor(field, width, height)

    def predict(left: int, top: int, wide: int, tall: int):
        return grid(x + left, y + top, wide, tall)

    writer = write_tiled_tiff if tiff else write_png
    writer(out, predict, w, h, channels, bits=bits)
    return w, h


def evaluate_image(checkpoint: str | Path, signal: ImageSignal, device: str | torch.device = "auto") -> dict:
    """PSNR/SSIM of a fitted field against an image, at the image's size, with the field evaluated on ``device``
    ("auto" or a device, see :func:`~rbfield.tasks.common.resolve_device`)."""
    field = load_image_field(checkpoint, resolve_device(device))
    fitted_channels = field.config["spec"]["out_dim"]
    if fitted_channels != signal.channels:
        raise RbfieldError(
            f"the field has {fitted_channels} channels but {signal.name} has {signal.channels}; "
            "compare against an image of the same kind"
        )
    return signal.final_metrics(field)


def compare_images(
    signal: ImageSignal,
    out: str | Path,
    field_names: list[str],
    params: int | str,
    train: TrainConfig,
    log=print,
    overwrite: bool = False,
    device: str | torch.device = "auto",
    inputs: tuple = (),
) -> list[dict]:
    """Fit every named field at the same budget and settings; write a table and a plot.

    Each field gets a full run folder ``out/<field>`` (written as by :func:`fit_image`; every one is
    checked before the first fit starts); ``out/compare.json``, ``out/compare.md`` and
    ``out/compare.png`` hold the side-by-side results.
    """
    out = Path(out)
    for name in field_names:
        RunFolder(out / name, overwrite=overwrite).check()
    reports = []
    for name in field_names:
        reports.append(
            fit_image(
                signal, out / name, name, params, train, log=log, overwrite=overwrite, device=device, inputs=inputs
            )
        )
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
    metric = curve_metric(reports[0]["history"])
    save_curves(out / "compare.png", {r["field"]: r["history"] for r in reports}, metric=metric)
    return reports


# Commands (their flags are registered by rbfield.commands)


DEMO_FIELD, DEMO_PARAMS, DEMO_CROP = "neurbf", "128k", 256


def _signal(path: str, batch: int, max_memory: str | None):
    """The image at ``path``, refused if its pixels would take more than ``--max-memory``."""
    max_bytes = None if max_memory is None else parse_bytes(max_memory)
    return ImageSignal.from_path(path, max_bytes=max_bytes, batch_size=batch)


def _print_report(report: dict, out: Path) -> None:
    ssim = "" if report["ssim"] is None else f", SSIM {report['ssim']:.4f}"
    compact = (
        f"{report['psnr_fp16']:.2f} dB"
        if "psnr_fp16" in report
        else f"{report['psnr_fp16_subset']:.2f} dB on a pixel subset"
    )
    print(
        f"{report['field']}: PSNR {report['psnr']:.2f} dB{ssim} after {report['steps']} steps in "
        f"{report['seconds']:.1f} s; compact fp16 export {report['compact_bytes']:,} bytes "
        f"({report['bits_per_pixel']:.2f} bits/pixel, {compact})"
    )
    print(
        f"time: setup {report['setup_seconds']:.1f} s, training {report['train_seconds']:.1f} s, final evaluation "
        f"{report['eval_seconds']:.1f} s, outputs {report['output_seconds']:.1f} s; "
        f"peak memory {report['peak_rss_bytes'] / 2**30:.2f} GiB"
    )
    print(
        f"results in {out}/ (metrics.json, {report['reconstruction']}, comparison.png, psnr_curve.png, "
        "field.safetensors)"
    )


def cmd_fit_image(args) -> int:
    if is_dataset(args.path):
        return run_dataset_command(args, "image")
    train, device = train_config(args), resolve_device(args.device)
    signal = _signal(args.path, args.batch, args.max_memory)
    out = Path(args.out or f"runs/{Path(args.path).stem}-{args.field}")
    with reporting_interrupts(lambda: report_interrupt(out)):
        report = fit_image(
            signal,
            out,
            args.field,
            args.params,
            train,
            resume=args.resume,
            overwrite=args.overwrite,
            device=device,
            inputs=(args.path,),
        )
    _print_report(report, out)
    return 0


def fitted_image_size(checkpoint: str | Path) -> tuple[int, int]:
    """(width, height) in pixels of the image a saved field was fitted to (its recorded signal spec).

    Raises:
        RbfieldError: the checkpoint is not an image field.
    """
    config = read_field_config(checkpoint, task="image")
    width, height = SignalSpec.from_dict(config["spec"]).resolution
    return width, height


def cmd_render_image(args) -> int:
    width, height = fitted_image_size(args.checkpoint) if args.size is None else parse_size(args.size)
    region = None if args.region is None else parse_region(args.region, width, height)
    device = resolve_device(args.device)
    written = render_image(args.checkpoint, width, height, args.out, bits=args.bits, region=region, device=device)
    part = "" if region is None else f", region x={region[0]}, y={region[1]} of {width}x{height}"
    print(f"wrote {args.out} ({written[0]}x{written[1]}{part}, {args.bits}-bit)")
    return 0


def cmd_eval_image(args) -> int:
    import json

    device = resolve_device(args.device)
    metrics = evaluate_image(args.checkpoint, _signal(args.path, 2**18, args.max_memory), device)
    print(json.dumps(metrics, indent=2))
    return 0


def cmd_compare_image(args) -> int:
    names = parse_field_names(args.fields, presets_for("image"))
    if is_dataset(args.path):
        return run_dataset_command(args, "image", names)
    train, device = train_config(args), resolve_device(args.device)
    signal = _signal(args.path, args.batch, args.max_memory)
    out = Path(args.out or f"runs/compare-{Path(args.path).stem}")
    with reporting_interrupts(lambda: report_finished_runs(out)):
        compare_images(
            signal, out, names, args.params, train, overwrite=args.overwrite, device=device, inputs=(args.path,)
        )
    print((out / "compare.md").read_text(), end="")
    print(f"results in {out}/ (compare.md, compare.json, compare.png, one run folder per field)")
    return 0


def cmd_demo(args) -> int:
    from skimage import data

    from rbfield.signals.image import centre_crop, image_to_float
    from rbfield.train import TrainConfig

    device = resolve_device(args.device)
    photo = data.astronaut()
    signal = ImageSignal(
        image_to_float(centre_crop(photo, DEMO_CROP)),
        name=f"astronaut (scikit-image), centre {DEMO_CROP}x{DEMO_CROP} crop",
    )
    out = Path(args.out)
    print(f"demo: fitting {DEMO_FIELD} ({DEMO_PARAMS} parameters, {args.steps} steps) to {signal.name}")
    train = TrainConfig(steps=args.steps, eval_every=100, progress=not args.quiet)
    with reporting_interrupts(lambda: print(f"\ninterrupted: partial results in {out}/", file=sys.stderr)):
        # overwrite: a demo runs again
        report = fit_image(signal, out, DEMO_FIELD, DEMO_PARAMS, train, overwrite=True, device=device)
    _print_report(report, out)
    return 0
