"""Training speed of a short SDF fit alone, beside one busy single-threaded process, and beside a second fit.

Each measurement is a fresh process that fits ``--field`` at ``--params`` to ``--mesh`` for ``--steps`` steps and
prints its training speed over ``--seconds`` of training (steps per second; set-up, a 10-step warm-up and the final
evaluation are not counted).
Every setting is measured ``--repeats`` times per situation and the median is reported:

* alone: the fit by itself;
* busy: the fit beside ``python -c "while True: pass"`` (one core's worth of other work);
* pair: two identical fits started together (the speed of each).

Settings vary the threads per fit, the environment (OpenMP's wait policy, Intel OpenMP's KMP_BLOCKTIME, which
PyTorch's GNU OpenMP ignores, Numba's threading layer) and whether the fit goes through
:func:`rbfield.ops.set_threads` or only ``torch.set_num_threads``. Numba's "tbb" layer needs the tbb package.

    PYTHONPATH=src python bench/contention.py --seconds 5 --params 200k --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from data_paths import MESHES

#: The elephant scan of the shared data folder beside the checkout.
MESH = str(MESHES / "elephant.off")

#: libgomp's spin count when OMP_WAIT_POLICY names no policy (milliseconds of spinning); GOMP_SPINCOUNT overrides
#: rbfield's default, so these rows behave as before rbfield set a brief spin on import.
DEFAULT_SPIN = {"GOMP_SPINCOUNT": "300000"}

#: name -> (threads, extra environment, thread handling: "torch" = torch.set_num_threads only, "rbfield" = set_threads)
SETTINGS = {
    "before: OpenMP's default spinning": (2, DEFAULT_SPIN, "torch"),
    "spinning, KMP_BLOCKTIME=0": (2, {**DEFAULT_SPIN, "KMP_BLOCKTIME": "0"}, "torch"),
    "spinning, NUMBA_THREADING_LAYER=workqueue": (2, {**DEFAULT_SPIN, "NUMBA_THREADING_LAYER": "workqueue"}, "torch"),
    "no spinning (OMP_WAIT_POLICY=PASSIVE)": (2, {"GOMP_SPINCOUNT": "0"}, "rbfield"),
    "after: set_threads(2) (brief spins)": (2, {}, "rbfield"),
    "set_threads(1)": (1, {}, "rbfield"),
}


def measure(mesh: str, field: str, params: str, seconds: float, threads: int, handling: str) -> float:
    """Steps per second of one fit's training loop in this process over ``seconds`` of training."""
    import torch

    from rbfield.fields import build_field
    from rbfield.signals.sdf import MeshSDF
    from rbfield.tasks.sdf import load_normalized
    from rbfield.train import TrainConfig, fit

    if handling == "rbfield":
        from rbfield.ops import set_threads

        set_threads(threads)
    else:
        torch.set_num_threads(threads)
    shape, _ = load_normalized(mesh)
    signal = MeshSDF(shape, mesh)
    field_ = build_field(field, signal.spec(), params)
    field_.initialize(signal)
    fit(field_, signal, TrainConfig(steps=10, eval_every=0, checkpoint_every=0, progress=False))  # compile, warm up
    result = fit(
        field_, signal, TrainConfig(steps=None, time_budget=seconds, eval_every=0, checkpoint_every=0, progress=False)
    )
    return result.steps / result.seconds


def _fit_command(args, threads: int, handling: str) -> list[str]:
    return [
        sys.executable,
        __file__,
        "--worker",
        "--mesh",
        args.mesh,
        "--field",
        args.field,
        "--params",
        args.params,
        "--seconds",
        str(args.seconds),
        "--threads",
        str(threads),
        "--handling",
        handling,
    ]


def _run_fits(commands: list[list[str]], environment: dict, busy: bool) -> list[float]:
    """Start the fits together (beside a busy loop if asked); their steps per second."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        if spinner is not None:
            time.sleep(0.5)
        fits = [subprocess.Popen(c, env=environment, stdout=subprocess.PIPE, text=True) for c in commands]
        outputs = [process.communicate()[0] for process in fits]
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    return [json.loads(output.strip().splitlines()[-1])["steps_per_s"] for output in outputs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mesh", default=MESH)
    parser.add_argument("--field", default="neurbf")
    parser.add_argument("--params", default="200k")
    parser.add_argument("--seconds", type=float, default=5.0, help="training seconds per fit (default 5)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--settings", help="comma-separated indices into the settings list (default all)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--handling", default="rbfield", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        import rbfield.ops  # noqa: F401  (before torch, as the command line imports it: OpenMP's wait policy)

        speed = measure(args.mesh, args.field, args.params, args.seconds, args.threads, args.handling)
        print(json.dumps({"steps_per_s": speed}))
        return
    chosen = list(SETTINGS.items())
    if args.settings:
        chosen = [chosen[int(i)] for i in args.settings.split(",")]
    print(f"load average at start: {os.getloadavg()[0]:.2f}", flush=True)
    print("| setting | alone (steps/s) | beside busy | slowdown | two fits (each) | slowdown |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |", flush=True)
    for name, (threads, extra, handling) in chosen:
        environment = {key: value for key, value in os.environ.items() if key not in ("OMP_NUM_THREADS",)}
        environment.update(extra)
        command = _fit_command(args, threads, handling)
        alone = statistics.median(_run_fits([command], environment, False)[0] for _ in range(args.repeats))
        busy = statistics.median(_run_fits([command], environment, True)[0] for _ in range(args.repeats))
        pair = statistics.median(
            s for _ in range(args.repeats) for s in _run_fits([command, command], environment, False)
        )
        print(
            f"| {name} | {alone:.1f} | {busy:.1f} | {alone / busy:.2f}x | {pair:.1f} | {alone / pair:.2f}x |",
            flush=True,
        )
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
