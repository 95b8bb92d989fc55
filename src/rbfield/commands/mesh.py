"""``rbfield export mesh``: one command for every field with a surface; flags and help.

The work is :mod:`rbfield.tasks.mesh_export`'s, imported when the command runs.
"""

from __future__ import annotations

from rbfield.commands import handler, nerf, sdf
from rbfield.scenes.mesh_defaults import DEFAULT_LEVEL
from rbfield.tasks.common import add_device_argument, add_min_piece_argument


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
    sdf.add_surface_argument(export, None)
    export.add_argument(
        "--level", type=float, default=DEFAULT_LEVEL, help=f"scenes: density iso-level (default {DEFAULT_LEVEL:g})"
    )
    export.add_argument(
        "--no-fill",
        action="store_true",
        help="scenes: do not fill what is hidden from outside the box (scenes filmed from inside it)",
    )
    add_device_argument(export)
    export.set_defaults(handler=handler("rbfield.tasks.mesh_export", "cmd_export_mesh"))
