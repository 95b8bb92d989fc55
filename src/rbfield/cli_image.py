"""Image commands of the CLI: fit, render, eval and compare images, and the demo."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rbfield.cli_common import (
    parse_field_names,
    report_finished_runs,
    report_interrupt,
    reporting_interrupts,
    train_config,
)

DEMO_FIELD, DEMO_PARAMS, DEMO_STEPS, DEMO_CROP = "neurbf", "128k", 1000, 256


def _train_config(args):
    return train_config(args, default_steps=2000)


def _signal(path: str, batch: int):
    from rbfield.signals.image import ImageSignal

    return ImageSignal.from_path(path, batch_size=batch)


def _add_training_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default="128k", help="trainable-parameter budget, e.g. 128k or 1.5M (default 128k)")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, help="training steps (default 2000)")
    budget.add_argument("--time", type=float, help="training time budget in seconds, instead of --steps")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--batch", type=int, default=2**18, help="pixels per step (default 2^18; smaller images use all pixels)")
    parser.add_argument("--eval-every", type=int, default=250, help="steps between PSNR evaluations (default 250)")
    parser.add_argument("--checkpoint-every", type=int, default=1000, help="steps between checkpoints (default 1000)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _print_report(report: dict, out: Path) -> None:
    ssim = f", SSIM {report['ssim']:.4f}" if "ssim" in report else ""
    print(
        f"{report['field']}: PSNR {report['psnr']:.2f} dB{ssim} after {report['steps']} steps in "
        f"{report['seconds']:.1f} s; compact fp16 export {report['compact_bytes']:,} bytes "
        f"({report['bits_per_pixel']:.2f} bits/pixel, {report['psnr_fp16']:.2f} dB)"
    )
    print(f"results in {out}/ (metrics.json, reconstruction.png, comparison.png, psnr_curve.png, field.safetensors)")


def cmd_fit_image(args) -> int:
    from rbfield.image_runs import fit_image

    signal = _signal(args.path, args.batch)
    out = Path(args.out or f"runs/{Path(args.path).stem}-{args.field}")
    train = _train_config(args)
    with reporting_interrupts(lambda: report_interrupt(out)):
        report = fit_image(signal, out, args.field, args.params, train, resume=args.resume)
    _print_report(report, out)
    return 0


def cmd_render_image(args) -> int:
    from rbfield.image_runs import parse_size, render_image

    width, height = parse_size(args.size)
    render_image(args.checkpoint, width, height, args.out, bits=args.bits)
    print(f"wrote {args.out} ({width}x{height}, {args.bits}-bit)")
    return 0


def cmd_eval_image(args) -> int:
    import json

    from rbfield.image_runs import evaluate_image

    metrics = evaluate_image(args.checkpoint, _signal(args.path, 2**18))
    print(json.dumps(metrics, indent=2))
    return 0


def cmd_compare_image(args) -> int:
    from rbfield.fields import PRESETS
    from rbfield.image_runs import compare_images

    names = parse_field_names(args.fields, PRESETS)
    signal = _signal(args.path, args.batch)
    out = Path(args.out or f"runs/compare-{Path(args.path).stem}")
    with reporting_interrupts(lambda: report_finished_runs(out)):
        compare_images(signal, out, names, args.params, _train_config(args))
    print((out / "compare.md").read_text(), end="")
    print(f"results in {out}/ (compare.md, compare.json, compare.png, one run folder per field)")
    return 0


def cmd_demo(args) -> int:
    from skimage import data

    from rbfield.image_runs import fit_image
    from rbfield.signals.image import ImageSignal, centre_crop, image_to_float
    from rbfield.train import TrainConfig

    photo = data.astronaut()
    signal = ImageSignal(image_to_float(centre_crop(photo, DEMO_CROP)), name=f"astronaut (scikit-image), centre {DEMO_CROP}x{DEMO_CROP} crop")
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
    from rbfield.fields import PRESETS

    fit = verbs["fit"].add_parser("image", help="fit a field to a photo")
    fit.add_argument("path", help="PNG, JPEG or TIFF image (8/16-bit, grey, RGB or RGBA)")
    fit.add_argument("--field", default="neurbf", help=f"one of {', '.join(PRESETS)} (default neurbf)")
    fit.add_argument("--out", help="run folder (default runs/<image>-<field>)")
    fit.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    _add_training_arguments(fit)
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
    _add_training_arguments(compare)
    compare.set_defaults(handler=cmd_compare_image)

    demo = commands.add_parser("demo", help="fit NeuRBF to a built-in photo (scikit-image's astronaut)")
    demo.add_argument("--out", default="runs/demo", help="run folder (default runs/demo)")
    demo.add_argument("--steps", type=int, default=DEMO_STEPS, help=f"training steps (default {DEMO_STEPS})")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(handler=cmd_demo)
