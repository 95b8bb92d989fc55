"""Scene commands of the CLI: ``fit nerf``, ``render nerf``, and radiance fields in ``export mesh``."""

from __future__ import annotations

from pathlib import Path

from rbfield.cli_common import report_interrupt, reporting_interrupts, train_config

#: Marching-cubes lattice points per axis for radiance fields; 384 and 512 scored the same
#: Chamfer L1 on the bench scenes for 3.4x and 8x the density queries (bench/results/nerf.md).
DEFAULT_MESH_RES = 256


def cmd_fit_nerf(args) -> int:
    from rbfield.radiance_runs import fit_scene

    train = train_config(args, default_steps=2000)
    out = Path(args.out or f"runs/{Path(args.scene).name}-{args.field}")
    with reporting_interrupts(lambda: report_interrupt(out)):
        report = fit_scene(args.scene, out, args.field, args.params, train, args.downscale, args.batch,
                           resume=args.resume, video=not args.no_video)
    lpips = report["lpips"] if isinstance(report["lpips"], str) else f"{report['lpips']:.4f}"
    print(f"{report['method']}: test PSNR {report['psnr']:.2f} dB, SSIM {report['ssim']:.4f} over {report['test_views']} views "
          f"after {report['steps']} steps in {report['seconds']:.1f} s; LPIPS {lpips}")
    print(f"results in {out}/ (metrics.json, renders/, {Path(report['video']).name if report['video'] else 'no video'}, field.safetensors)")
    return 0


def cmd_render_nerf(args) -> int:
    from rbfield.radiance_runs import render_scene

    summary = render_scene(args.checkpoint, args.out, split=args.split, orbit=args.orbit, data=args.data)
    if "psnr" in summary:
        print(f"{summary['split']}: PSNR {summary['psnr']:.2f} dB, SSIM {summary['ssim']:.4f}; video {summary['video']}")
    else:
        print(f"{summary['frames']} orbit frames in {args.out}/; video {summary['video']}")
    return 0


def _export_mesh_handler(fallback):
    """``export mesh`` for radiance fields; other checkpoints go to ``fallback`` (e.g. SDFs)."""

    def handler(args) -> int:
        from rbfield.radiance_runs import export_scene_mesh, is_radiance_checkpoint

        if fallback is not None and not is_radiance_checkpoint(args.checkpoint):
            return fallback(args)
        out = args.out or str(Path(args.checkpoint) / "mesh.ply")
        res = DEFAULT_MESH_RES if args.res is None else args.res
        from rbfield.geometry.mesh_pieces import MIN_PIECE_SHARE

        n_vertices, n_faces = export_scene_mesh(args.checkpoint, res, out, args.level, fill=not args.no_fill,
                                                min_piece_share=getattr(args, "min_piece", MIN_PIECE_SHARE))
        print(f"wrote {out} ({n_vertices:,} vertices, {n_faces:,} faces, vertex colours)")
        return 0

    return handler


def register(verbs: dict, commands) -> None:
    """Add ``fit nerf``, ``render nerf`` and radiance support in ``export mesh``.

    Call after the other tasks registered: if ``export mesh`` exists already,
    its handler is wrapped so radiance checkpoints come here and every other
    checkpoint goes to the original handler.
    """
    from rbfield.radiance.fields import RADIANCE_PRESETS
    from rbfield.radiance.mesh import DEFAULT_LEVEL

    fit = verbs["fit"].add_parser("nerf", help="fit a radiance field to posed photos (NeRF Blender format)")
    fit.add_argument("scene", help="scene folder with transforms_{train,val,test}.json (or a nerfstudio transforms.json)")
    fit.add_argument("--field", default="neurbf", choices=list(RADIANCE_PRESETS), help="field (default neurbf)")
    fit.add_argument("--params", default="1M", help="trainable-parameter budget, e.g. 1M or 500k (default 1M)")
    budget = fit.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, help="training steps (default 2000)")
    budget.add_argument("--time", type=float, help="training time budget in seconds, instead of --steps")
    fit.add_argument("--out", help="run folder (default runs/<scene>-<field>)")
    fit.add_argument("--downscale", type=int, default=1, help="integer image downscale (default 1)")
    fit.add_argument("--batch", type=int, default=4096, help="rays per step (default 4096)")
    fit.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    fit.add_argument("--eval-every", type=int, default=500, help="steps between PSNR checks on two test views (default 500)")
    fit.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    fit.add_argument("--no-video", action="store_true", help="skip the test-path video")
    fit.add_argument("--quiet", action="store_true", help="no progress bar")
    fit.set_defaults(handler=cmd_fit_nerf)

    render = verbs["render"].add_parser("nerf", help="render a fitted radiance field: a split with metrics, or an orbit")
    render.add_argument("checkpoint", help="run folder or field .safetensors")
    which = render.add_mutually_exclusive_group()
    which.add_argument("--split", default="test", choices=("train", "val", "test"), help="render this split (default test)")
    which.add_argument("--orbit", type=int, help="render N frames on a 30-degree orbit instead")
    render.add_argument("--data", help="scene folder (default: the one the field was fitted to)")
    render.add_argument("--out", required=True, help="output folder")
    render.set_defaults(handler=cmd_render_nerf)

    no_fill_help = "do not fill what is hidden from outside the box (for scenes filmed from inside it)"
    existing = verbs["export"].choices.get("mesh") if "export" in verbs else None
    if existing is not None:
        existing.add_argument("--level", type=float, default=DEFAULT_LEVEL, help=f"radiance fields: density iso-level (default {DEFAULT_LEVEL:g})")
        existing.add_argument("--no-fill", action="store_true", help=f"radiance fields: {no_fill_help}")
        existing.set_defaults(handler=_export_mesh_handler(existing.get_default("handler")))
    elif "export" in verbs:
        export = verbs["export"].add_parser("mesh", help="extract a mesh from a fitted field")
        export.add_argument("checkpoint", help="run folder or field .safetensors")
        export.add_argument("--res", type=int, default=DEFAULT_MESH_RES, help=f"grid resolution per axis (default {DEFAULT_MESH_RES})")
        export.add_argument("--out", help="output mesh, .ply or .obj (default <run>/mesh.ply)")
        export.add_argument("--level", type=float, default=DEFAULT_LEVEL, help=f"density iso-level (default {DEFAULT_LEVEL:g})")
        export.add_argument("--no-fill", action="store_true", help=no_fill_help)
        export.set_defaults(handler=_export_mesh_handler(None))
