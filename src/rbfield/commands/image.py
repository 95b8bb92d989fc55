"""``rbfield fit/render/eval/compare image`` and ``rbfield demo``: flags, defaults and help.

The work is :mod:`rbfield.tasks.image`'s, imported when a command runs.
"""

from __future__ import annotations

from rbfield.commands import handler
from rbfield.datasets.command import add_dataset_arguments
from rbfield.fields.names import PRESET_NAMES
from rbfield.signals.image_defaults import DEFAULT_BATCH
from rbfield.tasks.common import (
    TrainingDefaults,
    add_compare_arguments,
    add_memory_argument,
    add_run_arguments,
    add_training_arguments,
)

#: Longest side ``render image --size`` accepts: beyond 2^24, neighbouring pixel
#: centres are the same float32 coordinate, so a larger grid adds no detail.
MAX_RENDER_SIDE = 2**24
#: Training steps of ``rbfield demo``.
DEMO_STEPS = 1000

TRAINING_DEFAULTS = TrainingDefaults(
    params="128k", steps=2000, batch=DEFAULT_BATCH, batch_unit="pixels", eval_every=250, eval_what="PSNR evaluations"
)

_TASKS = "rbfield.tasks.image"


def register(verbs: dict, commands) -> None:
    """Add the image commands: ``fit/render/eval/compare image`` and ``demo``.

    Args:
        verbs: {"fit": subparsers, "render": ..., "eval": ..., "compare": ...}.
        commands: the top-level subparsers (for ``demo``).
    """
    fields = PRESET_NAMES["image"]
    fit = verbs["fit"].add_parser("image", help="fit a field to a photo")
    fit.add_argument(
        "path",
        help="PNG, JPEG or TIFF image (8/16-bit, grey, RGB or RGBA), or a folder, quoted glob or .csv/.jsonl "
        "manifest of them",
    )
    fit.add_argument("--field", default="neurbf", help=f"one of {', '.join(fields)} (default neurbf)")
    add_run_arguments(fit, "runs/<image>-<field>")
    add_training_arguments(fit, TRAINING_DEFAULTS)
    add_dataset_arguments(fit)
    add_memory_argument(fit)
    fit.set_defaults(handler=handler(_TASKS, "cmd_fit_image"))

    render = verbs["render"].add_parser(
        "image",
        help="sample a fitted image field at any size",
        description="Sample a fitted image field on a WIDTHxHEIGHT grid, or a region of it, streamed a band or "
        "tile at a time (memory does not grow with the output).",
    )
    render.add_argument("checkpoint", help="run folder or field .safetensors")
    render.add_argument(
        "--size",
        help=f"output grid WIDTHxHEIGHT (sides up to {MAX_RENDER_SIDE:,}; default: the size of the image the field "
        "was fitted to)",
    )
    render.add_argument(
        "--region",
        help="write only the pixels x,y,w,h of the --size grid (e.g. 0,0,1024,768): a crop of the full render",
    )
    render.add_argument("--out", required=True, help="output .png, or .tif/.tiff for a tiled pyramidal BigTIFF")
    render.add_argument("--bits", type=int, choices=(8, 16), default=8, help="bit depth (default 8)")
    render.set_defaults(handler=handler(_TASKS, "cmd_render_image"))

    evaluate = verbs["eval"].add_parser("image", help="PSNR/SSIM of a fitted field against an image")
    evaluate.add_argument("checkpoint", help="run folder or field .safetensors")
    evaluate.add_argument("path", help="the reference image")
    add_memory_argument(evaluate)
    evaluate.set_defaults(handler=handler(_TASKS, "cmd_eval_image"))

    compare = verbs["compare"].add_parser("image", help="fit several fields to one photo at one budget")
    add_compare_arguments(compare, "PNG, JPEG or TIFF image", "neurbf,instant-ngp,siren,ffn", "image")
    add_training_arguments(compare, TRAINING_DEFAULTS)
    add_dataset_arguments(compare)
    add_memory_argument(compare)
    compare.set_defaults(handler=handler(_TASKS, "cmd_compare_image"))

    demo = commands.add_parser("demo", help="fit NeuRBF to a built-in photo (scikit-image's astronaut)")
    demo.add_argument("--out", default="runs/demo", help="run folder (default runs/demo)")
    demo.add_argument("--steps", type=int, default=DEMO_STEPS, help=f"training steps (default {DEMO_STEPS})")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(handler=handler(_TASKS, "cmd_demo"))
