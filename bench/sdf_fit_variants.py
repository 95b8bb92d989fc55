"""Variants of one SDF fit (neurbf unless ``--field``), each run through ``fit_sdf`` (the code path of
``rbfield fit sdf``: run folder, piece filtering, marching cubes, metrics).

Evidence for the SDF training defaults (``tasks.sdf.DEFAULT_STEPS``,
``signals.sdf.DEFAULT_BATCH``) and the preset (``default_settings("neurbf", "sdf")``).
A variant is a JSON object with any of:

* ``steps``, ``batch``, ``seed``: as the CLI's ``--steps``, ``--batch``, ``--seed``;
* ``final_lr_fraction``: the cosine schedule's end (``TrainConfig``'s default otherwise);
* ``rbf_spacing``: the smallest RBF scale of the k-means init
  (``signals.sdf.RBF_SPACING``);
* ``mesh_normal_weight``: the weight of a mesh fit's normal term
  (``MeshSDF.normal_weight``; 0 turns it off);
* ``gradient_step``: the central-difference step of the gradient terms
  (``--gradient-step``; 0: exact gradients; unset: the shape kind's default);
* ``preset``: fields of the field's SDF settings dataclass to change (lists
  become tuples).

    OMP_NUM_THREADS=2 python bench/sdf_fit_variants.py SCAN --out runs/variants \\
        --variants '{"3k x 2^14": {"steps": 3000, "batch": 16384}, "12k x 2^12": {"steps": 12000, "batch": 4096}}'

Prints one line per variant (IoU, insides' IoU, NAE in degrees, Chamfer-L1,
training seconds); each variant's run folder is OUT/<index>.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import rbfield.signals.sdf as sdf_signal
from rbfield.fields import default_settings
from rbfield.tasks.sdf import DEFAULT_STEPS, fit_sdf, format_metric
from rbfield.train import TrainConfig

VARIANT_KEYS = {
    "steps",
    "batch",
    "seed",
    "final_lr_fraction",
    "rbf_spacing",
    "mesh_normal_weight",
    "gradient_step",
    "preset",
}


def run_variant(path: str, out: Path, field: str, variant: dict, params: str, resolution: int) -> dict:
    """Fit ``field`` with one variant's settings; the signal's spacing and normal
    weight are restored after."""
    unknown = set(variant) - VARIANT_KEYS
    if unknown:
        raise SystemExit(f"unknown variant keys {sorted(unknown)}; known: {sorted(VARIANT_KEYS)}")
    spacing, normal_weight = sdf_signal.RBF_SPACING, sdf_signal.MeshSDF.normal_weight
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in variant.get("preset", {}).items()}
    settings = replace(default_settings(field, "sdf"), **overrides)
    sdf_signal.RBF_SPACING = variant.get("rbf_spacing", spacing)
    sdf_signal.MeshSDF.normal_weight = variant.get("mesh_normal_weight", normal_weight)
    try:
        schedule = {key: variant[key] for key in ("seed", "final_lr_fraction") if key in variant}
        train = TrainConfig(steps=variant.get("steps", DEFAULT_STEPS), progress=False, **schedule)
        return fit_sdf(
            path,
            out,
            field,
            params,
            train,
            resolution,
            variant.get("batch", sdf_signal.DEFAULT_BATCH),
            log=lambda *_: None,
            gradient_step=variant.get("gradient_step"),
            settings=settings,
        )
    finally:
        sdf_signal.RBF_SPACING = spacing
        sdf_signal.MeshSDF.normal_weight = normal_weight


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("path")
    parser.add_argument("--variants", required=True, help="JSON: name -> variant")
    parser.add_argument("--out", default="runs/sdf-fit-variants")
    parser.add_argument("--field", default="neurbf")
    parser.add_argument("--params", default="500k")
    parser.add_argument("--res", type=int, default=512, help="marching-cubes resolution (default 512)")
    args = parser.parse_args()
    for index, (name, variant) in enumerate(json.loads(args.variants).items()):
        r = run_variant(args.path, Path(args.out) / str(index), args.field, variant, args.params, args.res)
        print(
            f"{name}: iou {format_metric(r['iou'], 5)} iou_inside {format_metric(r['iou_inside'], 5)} "
            f"NAE {format_metric(r['nae_deg'], 2)} deg Chamfer-L1 {format_metric(r['chamfer_l1'], 5)} | "
            f"{r['steps']} steps of {r['batch']} in {r['seconds']:.0f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
