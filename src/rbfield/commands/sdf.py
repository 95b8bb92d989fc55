"""``rbfield fit/eval/compare sdf``: flags, defaults and help.

The work is :mod:`rbfield.tasks.sdf`'s, imported when a command runs (``export mesh`` is
:mod:`rbfield.commands.mesh`'s).
"""

from __future__ import annotations

import argparse
import math

from rbfield.commands import handler
from rbfield.datasets.command import add_dataset_arguments
from rbfield.fields.names import PRESET_NAMES
from rbfield.signals.sdf_defaults import (
    DEFAULT_BATCH,
    DENOISE_MODES,
    DIFFERENCE_STEP,
    NORMAL_SOURCES,
    OUTLIER_MODES,
    SMOOTHING_NOISE,
    SURFACE_MODES,
)
from rbfield.tasks.common import (
    TrainingDefaults,
    add_compare_arguments,
    add_device_argument,
    add_min_piece_argument,
    add_run_arguments,
    add_training_arguments,
    number_in,
)

#: Training steps of a fit unless told otherwise, of DEFAULT_BATCH points each.
#: On the Stanford dragon, without the mesh normal term, neurbf's normal error
#: was 6.27 deg after 3,000 steps of 2**14 points and 5.93-6.01 (three seeds)
#: after 12,000 of 2**12; with the term, 5.74-5.79 (all scored at 200,000
#: samples; 5.09 at the current 1,000,000; BENCHMARKS.md, "Shapes").
#: On 2 cores, 12,000 steps train neurbf on a mesh for 3.6-4.8 min (exact
#: gradients) and on a point cloud for 2.7-2.9 min (central differences).
DEFAULT_STEPS = 12000
#: Surface samples per mesh for Chamfer / NAE / F-score: NeuRBF's released SDF
#: evaluation uses 1,000,000. Fewer samples measure the sampling as well as the
#: shapes: a scan scored against two independent samplings of itself gives NAE
#: 1.34 / 4.89 deg (bunny / dragon) at 200,000 samples and 0.63 / 2.80 at
#: 1,000,000 (bench/metric_floor.py; BENCHMARKS.md, "Shapes").
SURFACE_SAMPLES = 1_000_000
#: Trainable-parameter budget and marching-cubes resolution of a fit unless told otherwise.
DEFAULT_PARAMS, DEFAULT_RES = "500k", 512

TRAINING_DEFAULTS = TrainingDefaults(
    params=DEFAULT_PARAMS,
    steps=DEFAULT_STEPS,
    batch=DEFAULT_BATCH,
    batch_unit="points",
    eval_every=250,
    eval_what="quick IoU checks",
)

_TASKS = "rbfield.tasks.sdf"


def _add_shape_training_arguments(parser: argparse.ArgumentParser) -> None:
    add_training_arguments(parser, TRAINING_DEFAULTS)
    parser.add_argument(
        "--res", type=int, default=DEFAULT_RES, help=f"marching-cubes resolution (default {DEFAULT_RES})"
    )
    parser.add_argument(
        "--gradient-step",
        type=number_in(0.0, 0.01, "0 (exact gradients) or a step up to 0.01"),
        metavar="H",
        help="central-difference step of the loss's gradient terms, in unit-cube units; "
        "0: exact gradients by a double backward, slower (default: 0 for a mesh, "
        f"{DIFFERENCE_STEP:g} for a point cloud)",
    )
    parser.add_argument(
        "--normals",
        choices=NORMAL_SOURCES,
        default="auto",
        help="a point cloud's normals: the file's if it has them, else estimated from the points and oriented "
        "consistently (auto, the default); the file's only (given); estimated even if the file has some (estimate)",
    )
    parser.add_argument(
        "--outliers",
        choices=OUTLIER_MODES,
        default="remove",
        help="a point cloud's points far from their neighbours: removed with a count (remove, the default), or "
        "kept, for a cloud known to be clean (keep)",
    )
    parser.add_argument(
        "--denoise",
        choices=DENOISE_MODES,
        default="auto",
        help=f"a noisy point cloud (noise above {SMOOTHING_NOISE * 100:g}%% of its bounding box's diagonal): moved "
        "onto quadrics fitted to its neighbourhoods before the fit (auto, the default), or fitted as read (off)",
    )
    add_surface_argument(parser, "closed")
    _add_scoring_arguments(parser)


def add_surface_argument(parser: argparse.ArgumentParser, default: str | None) -> None:
    """``--surface closed|open``: keep the field's closed zero set, or trim it to the input
    (:mod:`rbfield.geometry.open_surface`); ``default`` None takes the run's own mode."""
    default_text = "the run's own" if default is None else default
    parser.add_argument(
        "--surface",
        choices=SURFACE_MODES,
        default=default,
        help="closed: a watertight mesh (holes of the input are capped); open: remove the mesh's parts "
        f"far from the input, for open scans (default {default_text})",
    )


def _add_scoring_arguments(parser: argparse.ArgumentParser) -> None:
    """--min-piece (which mesh is kept) and --metric-samples (how it is scored)."""
    add_min_piece_argument(parser)
    parser.add_argument(
        "--metric-samples",
        type=number_in(1000, math.inf, "an integer >= 1000", int),
        default=SURFACE_SAMPLES,
        metavar="N",
        help="surface samples per mesh for Chamfer, NAE and F-score "
        f"(default {SURFACE_SAMPLES:,}, NeuRBF's evaluation; fewer are faster and noisier)",
    )


def register(verbs: dict, commands) -> None:
    """Add ``fit/eval/compare sdf`` (``export mesh`` is :mod:`rbfield.commands.mesh`'s).

    Args:
        verbs: {"fit": subparsers, "eval": ..., "compare": ..., "export": ...}.
        commands: the top-level subparsers (unused; kept for the common signature).
    """
    fit = verbs["fit"].add_parser("sdf", help="fit a signed distance field to a mesh or point cloud")
    fit.add_argument(
        "path",
        help="mesh (OBJ, PLY, OFF, STL, GLB) or point cloud (.xyz, .pwn, .ply, .pcd, .las, .laz; with or without "
        "normals), or a folder, quoted glob or .csv/.jsonl manifest of them",
    )
    fit.add_argument("--field", default="neurbf", help=f"one of {', '.join(PRESET_NAMES['sdf'])} (default neurbf)")
    add_run_arguments(fit, "runs/<shape>-<field>")
    _add_shape_training_arguments(fit)
    add_dataset_arguments(fit)
    fit.set_defaults(handler=handler(_TASKS, "cmd_fit_sdf"))

    evaluate = verbs["eval"].add_parser("sdf", help="shape metrics of a fitted SDF against a mesh or point cloud")
    evaluate.add_argument("checkpoint", help="run folder or field .safetensors")
    evaluate.add_argument("--against", required=True, help="reference mesh or oriented point cloud (input coordinates)")
    evaluate.add_argument(
        "--res", type=int, default=DEFAULT_RES, help=f"marching-cubes resolution (default {DEFAULT_RES})"
    )
    add_surface_argument(evaluate, None)
    _add_scoring_arguments(evaluate)
    add_device_argument(evaluate)
    evaluate.set_defaults(handler=handler(_TASKS, "cmd_eval_sdf"))

    compare = verbs["compare"].add_parser("sdf", help="fit several fields to one shape at one budget")
    add_compare_arguments(compare, "mesh or point cloud", "neurbf,instant-ngp,siren,triplane", "shape")
    compare.add_argument(
        "--baseline",
        choices=["poisson"],
        help="also reconstruct with screened Poisson (Open3D; pip install 'rbfield[poisson]') and add its row",
    )
    compare.add_argument(
        "--poisson-trim",
        type=float,
        metavar="QUANTILE",
        help="remove screened Poisson's vertices below this density quantile (default 0.01 with "
        "--surface open, none otherwise; 0 keeps all)",
    )
    _add_shape_training_arguments(compare)
    add_dataset_arguments(compare)
    compare.set_defaults(handler=handler(_TASKS, "cmd_compare_sdf"))
