"""Shape commands of the CLI: fit/eval/compare sdf and export mesh."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from rbfield.cli_common import (
    parse_field_names,
    report_finished_runs,
    report_interrupt,
    reporting_interrupts,
    train_config,
)
from rbfield.geometry.mesh_pieces import MIN_PIECE_SHARE
from rbfield.sdf_runs import DEFAULT_STEPS, SURFACE_SAMPLES, format_metric
from rbfield.signals.sdf import DEFAULT_BATCH, DIFFERENCE_STEP

DEFAULT_PARAMS, DEFAULT_RES = "500k", 512


def _train_config(args):
    return train_config(args, default_steps=DEFAULT_STEPS)


def _add_training_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default=DEFAULT_PARAMS, help=f"trainable-parameter budget (default {DEFAULT_PARAMS})")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, help=f"training steps (default {DEFAULT_STEPS})")
    budget.add_argument("--time", type=float, help="training time budget in seconds, instead of --steps")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH, help=f"points per step (default {DEFAULT_BATCH})")
    parser.add_argument("--res", type=int, default=DEFAULT_RES, help=f"marching-cubes resolution (default {DEFAULT_RES})")
    parser.add_argument("--eval-every", type=int, default=250, help="steps between quick IoU checks (default 250)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--gradient-step", type=_number_in(0.0, 0.01, "0 (exact gradients) or a step up to 0.01"),
                        metavar="H",
                        help="central-difference step of the loss's gradient terms, in unit-cube units; "
                        "0: exact gradients by a double backward, slower (default: 0 for a mesh, "
                        f"{DIFFERENCE_STEP:g} for a point cloud)")
    _add_scoring_arguments(parser)


def _number_in(low: float, high: float, meaning: str, convert=float):
    """An argparse type: ``convert(text)`` (float or int) in [low, high];
    otherwise "must be <meaning>"."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = float("nan")
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {meaning}, got {text!r}")
        return value

    return parse


def _add_scoring_arguments(parser: argparse.ArgumentParser) -> None:
    """--min-piece (which mesh is kept) and --metric-samples (how it is scored)."""
    _add_piece_argument(parser)
    parser.add_argument("--metric-samples", type=_number_in(1000, math.inf, "an integer >= 1000", int),
                        default=SURFACE_SAMPLES, metavar="N",
                        help="surface samples per mesh for Chamfer, NAE and F-score "
                        f"(default {SURFACE_SAMPLES:,}, NeuRBF's evaluation; fewer are faster and noisier)")


def _add_piece_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--min-piece", type=_number_in(0.0, 1.0, "a share between 0 and 1"), default=MIN_PIECE_SHARE, metavar="SHARE",
                        help="drop mesh pieces with less than this share of the largest piece's area "
                        f"(floaters; default {MIN_PIECE_SHARE:g}, 0 keeps every piece)")


def cmd_fit_sdf(args) -> int:
    from rbfield.sdf_runs import fit_sdf

    out = Path(args.out or f"runs/{Path(args.path).stem}-{args.field}")
    with reporting_interrupts(lambda: report_interrupt(out)):
        r = fit_sdf(args.path, out, args.field, args.params, _train_config(args), args.res, args.batch,
                    resume=args.resume, min_piece_share=args.min_piece, gradient_step=args.gradient_step,
                    metric_samples=args.metric_samples)
    print(f"{r['field']}: IoU {format_metric(r['iou'], 4)} (insides {format_metric(r['iou_inside'], 4)}), Chamfer-L1 {format_metric(r['chamfer_l1'], 5)}, NAE {format_metric(r['nae_deg'], 2)} deg, "
          f"F-score {format_metric(r['fscore'], 4)} after {r['steps']} steps in {r['seconds']:.1f} s")
    print(f"results in {out}/ (metrics.json, mesh.ply, views.png, field.safetensors)")
    return 0


def cmd_export_mesh(args) -> int:
    from rbfield.sdf_runs import export_mesh

    res = DEFAULT_RES if args.res is None else args.res
    n_vertices, n_faces = export_mesh(args.checkpoint, res, args.out, args.min_piece)
    print(f"wrote {args.out} ({n_vertices:,} vertices, {n_faces:,} faces, {res}^3 grid)")
    return 0


def cmd_eval_sdf(args) -> int:
    from rbfield.sdf_runs import evaluate_checkpoint

    metrics = evaluate_checkpoint(args.checkpoint, args.against, args.res, args.min_piece, args.metric_samples)
    print(json.dumps(metrics, indent=2))
    return 0


def cmd_compare_sdf(args) -> int:
    from rbfield.fields import PRESETS
    from rbfield.sdf_runs import compare_sdf

    names = parse_field_names(args.fields, PRESETS)
    out = Path(args.out or f"runs/compare-{Path(args.path).stem}")
    with reporting_interrupts(lambda: report_finished_runs(out)):
        compare_sdf(args.path, out, names, args.params, _train_config(args), args.res, args.batch,
                    min_piece_share=args.min_piece, gradient_step=args.gradient_step,
                    metric_samples=args.metric_samples)
    print((out / "compare.md").read_text(), end="")
    print(f"results in {out}/ (compare.md, compare.json, one run folder per field)")
    return 0


def register(verbs: dict, commands) -> None:
    """Add ``fit/eval/compare sdf`` and ``export mesh``.

    Args:
        verbs: {"fit": subparsers, "eval": ..., "compare": ..., "export": ...}.
        commands: the top-level subparsers (unused; kept for the common signature).
    """
    from rbfield.fields import PRESETS

    fit = verbs["fit"].add_parser("sdf", help="fit a signed distance field to a mesh or oriented point cloud")
    fit.add_argument("path", help="mesh (OBJ, PLY, OFF, STL, GLB) or point cloud (.xyz, .pwn, .ply with normals)")
    fit.add_argument("--field", default="neurbf", help=f"one of {', '.join(PRESETS)} (default neurbf)")
    fit.add_argument("--out", help="run folder (default runs/<shape>-<field>)")
    fit.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    _add_training_arguments(fit)
    fit.set_defaults(handler=cmd_fit_sdf)

    export = verbs["export"].add_parser("mesh", help="extract a fitted SDF's mesh by marching cubes")
    export.add_argument("checkpoint", help="run folder or field .safetensors")
    # No argparse default: radiance fields (cli_nerf) have their own.
    export.add_argument("--res", type=int, help=f"grid resolution per axis (default {DEFAULT_RES}; 256 for a radiance field)")
    export.add_argument("--out", required=True, help="output mesh (.ply, .obj or .glb)")
    _add_piece_argument(export)
    export.set_defaults(handler=cmd_export_mesh)

    evaluate = verbs["eval"].add_parser("sdf", help="shape metrics of a fitted SDF against a mesh or point cloud")
    evaluate.add_argument("checkpoint", help="run folder or field .safetensors")
    evaluate.add_argument("--against", required=True, help="reference mesh or oriented point cloud (input coordinates)")
    evaluate.add_argument("--res", type=int, default=DEFAULT_RES, help=f"marching-cubes resolution (default {DEFAULT_RES})")
    _add_scoring_arguments(evaluate)
    evaluate.set_defaults(handler=cmd_eval_sdf)

    compare = verbs["compare"].add_parser("sdf", help="fit several fields to one shape at one budget")
    compare.add_argument("path", help="mesh or oriented point cloud")
    compare.add_argument("--fields", default="neurbf,instant-ngp,siren,triplane", help="comma-separated presets")
    compare.add_argument("--out", help="output folder (default runs/compare-<shape>)")
    _add_training_arguments(compare)
    compare.set_defaults(handler=cmd_compare_sdf)
