"""``rbfield fit/render/eval nerf``: flags, defaults and help.

The work is :mod:`rbfield.tasks.nerf`'s, imported when a command runs (``export mesh`` is
:mod:`rbfield.commands.mesh`'s).
"""

from __future__ import annotations

from rbfield.commands import handler
from rbfield.fields.names import PRESET_NAMES
from rbfield.tasks.common import TrainingDefaults, add_device_argument, add_run_arguments, add_training_arguments

DEFAULT_PARAMS = "1M"
DEFAULT_BATCH_RAYS = 4096
#: Marching-cubes lattice points per axis for radiance fields; 384 and 512 scored the same
#: Chamfer L1 on the bench scenes for 3.4x and 8x the density queries (bench/results/nerf.md).
DEFAULT_MESH_RES = 256

TRAINING_DEFAULTS = TrainingDefaults(
    params=DEFAULT_PARAMS,
    steps=2000,
    batch=DEFAULT_BATCH_RAYS,
    batch_unit="rays",
    eval_every=500,
    eval_what="PSNR checks on two test views",
)

_TASKS = "rbfield.tasks.nerf"


def register(verbs: dict, commands) -> None:
    """Add ``fit nerf``, ``render nerf`` and ``eval nerf`` (``export mesh`` is :mod:`rbfield.commands.mesh`'s)."""
    fit = verbs["fit"].add_parser("nerf", help="fit a radiance field to posed photos (NeRF Blender format)")
    fit.add_argument(
        "scene", help="scene folder with transforms_{train,val,test}.json (or a nerfstudio transforms.json)"
    )
    fit.add_argument("--field", default="neurbf", choices=PRESET_NAMES["radiance"], help="field (default neurbf)")
    add_run_arguments(fit, "runs/<scene>-<field>")
    add_training_arguments(fit, TRAINING_DEFAULTS)
    fit.add_argument("--downscale", type=int, default=1, help="integer image downscale (default 1)")
    fit.add_argument("--no-video", action="store_true", help="skip the test-path video")
    fit.set_defaults(handler=handler(_TASKS, "cmd_fit_nerf"))

    render = verbs["render"].add_parser(
        "nerf", help="render a fitted radiance field: a split with metrics, or an orbit"
    )
    render.add_argument("checkpoint", help="run folder or field .safetensors")
    which = render.add_mutually_exclusive_group()
    which.add_argument(
        "--split", default="test", choices=("train", "val", "test"), help="render this split (default test)"
    )
    which.add_argument("--orbit", type=int, help="render N frames on a 30-degree orbit instead")
    render.add_argument("--data", help="scene folder (default: the one the field was fitted to)")
    render.add_argument("--out", required=True, help="output folder")
    add_device_argument(render)
    render.set_defaults(handler=handler(_TASKS, "cmd_render_nerf"))

    evaluate = verbs["eval"].add_parser(
        "nerf", help="test-split metrics of a fitted radiance field (no renders unless --out is given)"
    )
    evaluate.add_argument("checkpoint", help="run folder or field .safetensors")
    evaluate.add_argument(
        "--split", default="test", choices=("train", "val", "test"), help="score this split (default test)"
    )
    evaluate.add_argument("--data", help="scene folder (default: the one the field was fitted to)")
    evaluate.add_argument("--out", help="also write the renders, depth maps and metrics.json into this folder")
    add_device_argument(evaluate)
    evaluate.set_defaults(handler=handler(_TASKS, "cmd_eval_nerf"))
