"""``rbfield export mesh``: one command for every field with a surface, dispatched by the field's task."""

from __future__ import annotations

from rbfield.errors import RbfieldError
from rbfield.geometry.marching_cubes import check_resolution
from rbfield.geometry.shapes_io import check_mesh_output
from rbfield.io import field_task, read_field_config
from rbfield.runs import check_output_file
from rbfield.tasks import nerf, sdf

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
    if task != "sdf" and args.surface is not None:
        raise RbfieldError(f"{args.checkpoint}: --surface applies to SDF runs; this is a {task} field")
    return EXPORTERS[task](args)
