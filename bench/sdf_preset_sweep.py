"""One-change-at-a-time variants of the neurbf SDF preset (evidence for the
settings in fields.py's ``NEURBF_SETTINGS["sdf"]``).

Each variant overrides keys of ``NEURBF_SETTINGS["sdf"]`` (a JSON object; lists
become tuples); the key ``"field"`` picks another preset instead, for a baseline
in the same run. Every variant trains for ``--steps`` steps of 2^14 points from
the same samples, then is scored on a marching-cubes mesh (no piece filtering)
against the input, like ``rbfield fit sdf``.

    python bench/sdf_preset_sweep.py ../shared/data/meshes/bunny00.off --steps 1500 \\
        --variants '{"preset": {}, "paper m0": {"first_layer_frequencies": [30, 300]}, "ngp": {"field": "instant-ngp"}}'

Prints one line per variant: IoU, NAE (deg), Chamfer-L1, steps, training seconds.
"""

from __future__ import annotations

import argparse
import json

import torch

from rbfield.fields import NEURBF_SETTINGS, build_field
from rbfield.geometry.marching_cubes import extract_mesh
from rbfield.signals.sdf import MeshSDF
from rbfield.tasks.sdf import Reference, load_normalized
from rbfield.train import TrainConfig, fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("path")
    parser.add_argument("--variants", required=True, help="JSON: name -> overrides")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--params", default="500k")
    parser.add_argument("--res", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    shape, _ = load_normalized(args.path)
    signal = MeshSDF(shape, args.path, batch_size=2**14)
    reference = Reference(shape)
    preset = dict(NEURBF_SETTINGS["sdf"])
    for name, overrides in json.loads(args.variants).items():
        overrides = dict(overrides)
        field_name = overrides.pop("field", "neurbf")
        NEURBF_SETTINGS["sdf"] = {**preset, **{k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}}
        field = build_field(field_name, signal.spec(), args.params)
        field.initialize(signal)
        result = fit(field, signal, TrainConfig(steps=args.steps, eval_every=args.steps, progress=False))
        vertices, faces = extract_mesh(lambda x: field(x).reshape(-1), args.res)
        m = reference.score(field, vertices, faces)
        print(
            f"{name}: IoU {m['iou']:.4f} NAE {m['nae_deg']:.2f} Chamfer-L1 {m['chamfer_l1']:.5f} | "
            f"{result.steps} steps {result.seconds:.0f} s",
            flush=True,
        )
    NEURBF_SETTINGS["sdf"] = preset


if __name__ == "__main__":
    main()
