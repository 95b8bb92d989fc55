"""NeuRBF's sinusoid phase b on SDFs: trained (paper's Eq. 5) against fixed at 0 (released code).

Fits the neurbf sdf preset with each choice for the same steps and seed, then
scores marching cubes at ``--res`` against the mesh. Evidence for
``learn_phase=False`` in ``rbfield.fields.NEURBF_SETTINGS["sdf"]``.

    OMP_NUM_THREADS=1 python bench/sdf_phase_check.py ../shared/data/meshes/bunny00.off --steps 500
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from rbfield.fields import build_field
from rbfield.geometry.marching_cubes import extract_mesh
from rbfield.signals.sdf import MeshSDF
from rbfield.tasks.sdf import Reference, load_normalized
from rbfield.train import TrainConfig, initialize_and_fit

REPORTED = ("iou", "iou_inside", "iou_uniform", "iou_near", "chamfer_l1", "nae_deg", "fscore")


def fit_and_score(path: str, learn_phase: bool, steps: int, params: str, resolution: int) -> dict:
    """Metrics of one neurbf fit with the phase trained or frozen at 0."""
    shape, _ = load_normalized(path)
    signal = MeshSDF(shape, path, batch_size=2**14)
    field = build_field("neurbf", signal.spec(), params)
    field.encoding.parts[0].phase.requires_grad_(learn_phase)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as run_dir:
        initialize_and_fit(
            field, signal, TrainConfig(steps=steps, eval_every=0, progress=False), run_dir, False, lambda *_: None
        )
    seconds = time.perf_counter() - started
    vertices, faces = extract_mesh(lambda x: field(x).reshape(-1), resolution)
    metrics = Reference(shape).score(field, vertices, faces)
    return {"learn_phase": learn_phase, "train_s": round(seconds), **{k: round(metrics[k], 4) for k in REPORTED}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("path")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--params", default="500k")
    parser.add_argument("--res", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for learn_phase in (False, True):
        print(fit_and_score(args.path, learn_phase, args.steps, args.params, args.res), flush=True)


if __name__ == "__main__":
    main()
