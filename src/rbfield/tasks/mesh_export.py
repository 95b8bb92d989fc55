"""``rbfield export mesh``: one command for every field with a surface, dispatched by the field's task."""

from __future__ import annotations

from rbfield.errors import RbfieldError
from rbfield.geometry.marching_cubes import check_resolution
from rbfield.geometry.shapes_io import check_mesh_output
from rbfield.io import field_task, read_field_config
from rbfield.runs import check_output_file
from rbfield.scenes.mesh import DEFAULT_LEVEL
from rbfield.tasks import nerf, sdf
from rbfield.tasks.common import add_device_argument, add_min_piece_argument

#: The task module that exports each field task's mesh.
EXPORTERS = {"sdf": sdf.cmd_export_mesh, "radiance": nerf.cmd_export_mesh}


def cmd_export_mesh(args) -> int:
    """Check the output's extension and resolution (before any work), then hand over to the field's task."""
    check_mesh_output(args.out)
    check_output_file(args.out)
    if args.res is not None:
        check_resolution(args.res)
    task = field_task(read_field_config(args.checkpoint))
    if task not in EXPORTERS:
        raise RbfieldError(
            f"{args.checkpoint}: the field is of the {task} task, which has no surface to export; "
            "pass an SDF or scene run"
        )
    return EXPORTERS[task](args)


def register(verbs: dict) -> None:
    """Add ``export mesh`` with the options of every exporter."""
    export = verbs["export"].add_parser("mesh", help="extract the surface of a fitted SDF or scene field")
    export.add_argument("checkpoint", help="run folder or field .safetensors")
    export.add_argument("--out", required=True, help="output mesh (.ply, .obj or .glb)")
    export.add_argument(
        "--res",
        type=int,
        help=f"grid resolution per axis (default {sdf.DEFAULT_RES} for an SDF, {nerf.DEFAULT_MESH_RES} for a scene)",
    )
    add_min_piece_argument(export)
    export.add_argument(
        "--level", type=float, default=DEFAULT_LEVEL, help=f"scenes: density iso-level (default {DEFAULT_LEVEL:g})"
    )
    export.add_argument(
        "--no-fill",
        action="store_true",
        help="scenes: do not fill what is hidden from outside the box (scenes filmed from inside it)",
    )
    add_device_argument(export)
    export.set_defaults(handler=cmd_export_mesh)
