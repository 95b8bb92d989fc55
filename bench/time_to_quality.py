"""Time to quality on a photo: seconds until each field and peer reaches 35 and 40 dB.

The photo is scikit-image's ``astronaut`` (512x512 RGB, a real photo; ``--size``
below 512 takes its centre crop, for quick checks). Every contender trains on
the same photo, pixels per step (``--batch``; all 2**18 pixels of the 512x512
photo by default) and thread count, and is evaluated on the whole image (PSNR of
the clipped reconstruction, ``rbfield.metrics.psnr``) every ``--eval-every``
steps with the clock stopped. A contender's time to X dB is its set-up time
(building it; for NeuRBF also the k-means placement of its RBFs) plus its
training seconds at the first evaluation at or above X dB, so it is exact to
within ``--eval-every`` steps and excludes evaluation. All contenders run in one
process, so rbfield's allocator setting (made on import) applies to the peers too,
and Numba's thread count follows torch's ``--threads``.

The budget, ``--params`` (default 512k, about 2 trainable parameters per pixel:
the ratio of the paper's 128K on 256x256), applies to rbfield's fields and to the
hash peer; at 512k the latter gets 2^14 rows per level, 530,755 parameters.

Contenders:

* rbfield's fields (``--fields``), built with ``rbfield.build_field`` at
  ``--params`` trainable parameters and trained by ``rbfield.fit`` with their
  preset learning rates (Adam, cosine decay over ``--steps``); a run ends at its
  first evaluation at or above 40 dB (ending it earlier changes nothing measured
  before) or after ``--steps``. ``--repeats`` runs each, seeds 0, 1, ...
* ``siren-pytorch``: ``siren_pytorch.SirenNet`` with 4 sine layers 256 wide and
  a linear output (2 -> 256 -> 256 -> 256 -> 256 -> 3, 198,915 parameters for RGB:
  the SIREN authors' image-fitting notebook, ``hidden_layers=3``), w0 = 30 in
  every layer as in the paper (the package's default for hidden layers is 1),
  coordinates in [-1, 1]; plain Adam at the paper's lr 1e-4, constant.
* ``nerfstudio-hash``: nerfstudio's ``HashEncoding(implementation="torch")``
  with the instant-ngp preset's grid (16 levels x 2 features, coarsest 16,
  finest = image size) and the power-of-two table nearest to the budget, then
  nerfstudio's ``MLP(implementation="torch")`` of rbfield's instant-ngp decoder
  shape (32 -> 64 -> 64 -> 3, ReLU). Its encoding is 3-D only, so pixels are fed as
  (x, y, 0). Plain Adam at instant-ngp's lr 1e-2, betas (0.9, 0.99), eps 1e-15,
  constant.

To save CPU the peers run after rbfield's fields: with T the fastest rbfield
median time to 40 dB, a peer trains for at most (its target ratio) x T x 1.5
seconds (10x for siren-pytorch, 4x for nerfstudio-hash; ``--cap`` overrides),
``--peer-repeats`` times (default 1). A peer short of a target within its cap
is reported as "> its time" and its ratio as a lower bound.

Results go to ``--out``.md and ``--out``.json. After every finished run the JSON
is rewritten, and a rerun with the same settings keeps the runs it holds and
does only the missing ones. A peer run also saves its state at every evaluation
(``--out``.NAME-seedN.pt, deleted when it ends) and a rerun continues it from
there, as a capped peer may train for hours; an interrupted rbfield run starts
again.

The peers are a benchmark-only extra, never needed by the tests. Install them
(from the repository root, in the project's venv) with:

    pip install -e ".[bench]" && pip install --no-deps nerfstudio==1.1.5 viser==0.2.7

(nerfstudio and viser without their dependencies: the hash encoding imports
only jaxtyping, rich and, through viser, msgspec and websockets, which the
extra brings.) The full benchmark, on 2 threads (about 26 minutes on 2 quiet
cores on 2026-11-24, longer on a busy machine; siren-pytorch's cap of 15 T is
the largest part):

    python bench/time_to_quality.py --threads 2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import statistics
import sys
import time
from functools import partial
from importlib import metadata
from pathlib import Path

import numba
import numpy as np
import torch
from skimage import data
from torch import nn

from rbfield import PRESETS, ImageSignal, TrainConfig, build_field, fit, parse_budget
from rbfield.decoders import mlp_param_count
from rbfield.fields import default_settings
from rbfield.io import atomic_torch_save, atomic_write_bytes, atomic_write_json
from rbfield.metrics import psnr
from rbfield.ops import numba_kernels
from rbfield.signals.image import centre_crop, image_to_float, reconstruct

HASH_DEFAULTS = default_settings("instant-ngp", "image")

TARGETS_DB = (35.0, 40.0)
#: How many times sooner rbfield's fastest field should reach 40 dB than each peer.
PEER_TARGET_RATIOS = {"siren-pytorch": 10.0, "nerfstudio-hash": 4.0}
#: A peer's default cap is its target ratio x T x this factor.
CAP_FACTOR = 1.5
SIREN_WIDTH, SIREN_LAYERS, SIREN_W0, SIREN_LR = 256, 4, 30.0, 1e-4
HASH_LEVELS, HASH_FEATURES, HASH_COARSEST, HASH_LR = 16, 2, 16, 1e-2
INSTALL_COMMAND = 'pip install -e ".[bench]" && pip install --no-deps nerfstudio==1.1.5 viser==0.2.7'


class StoppingImageSignal(ImageSignal):
    """An :class:`ImageSignal` that ends an ``rbfield.fit`` run at the first
    evaluation reaching ``stop_db``.

    The trainer stops once its progress, the larger of step/steps and
    seconds/time_budget, reaches 1; after the evaluation that crossed
    ``stop_db`` this sets the run's time budget to a nanosecond, so the run
    ends at that step with its history intact.
    """

    def __init__(self, pixels: np.ndarray, name: str, batch_size: int, config: TrainConfig, stop_db: float):
        super().__init__(pixels, name=name, batch_size=batch_size)
        self.config = config
        self.stop_db = stop_db

    def evaluate(self, field: nn.Module) -> dict:
        metrics = {"psnr": whole_image_psnr(self, field)}
        if metrics["psnr"] >= self.stop_db:
            self.config.time_budget = 1e-9
        return metrics


def whole_image_psnr(signal: ImageSignal, field: nn.Module) -> float:
    """PSNR (dB) of the clipped field over every pixel (``ImageSignal.evaluate``
    measures a fixed subset of pixels above 2^16 of them)."""
    target = torch.from_numpy(signal.store.read_float(0, 0, signal.width, signal.height))
    return psnr(reconstruct(field, signal.width, signal.height).clamp(0, 1), target)


class CoordinateAdapter(nn.Module):
    """A peer network behind rbfield's field interface: (P, 2) pixel coordinates
    in [0, 1]^2 -> (P, C) values.

    Args:
        net: the peer network.
        mode: "signed" feeds 2x - 1 in [-1, 1]^2 (SIREN's convention);
            "xy0" feeds (x, y, 0) to a 3-D-only encoding.
    """

    def __init__(self, net: nn.Module, mode: str):
        super().__init__()
        self.net = net
        self.mode = mode

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        if self.mode == "signed":
            return self.net(coords * 2.0 - 1.0)
        return self.net(torch.cat([coords, coords.new_zeros(coords.shape[0], 1)], dim=1))


def load_photo(size: int) -> np.ndarray:
    """The astronaut photo as (size, size, 3) float32 in [0, 1] (centre crop below 512)."""
    pixels = image_to_float(data.astronaut())
    return pixels if size == pixels.shape[0] else centre_crop(pixels, size)


def build_siren_peer(channels: int) -> tuple[nn.Module, dict, dict]:
    """siren-pytorch's SirenNet, its Adam settings, and a description."""
    from siren_pytorch import SirenNet

    net = SirenNet(
        dim_in=2, dim_hidden=SIREN_WIDTH, dim_out=channels, num_layers=SIREN_LAYERS, w0=SIREN_W0, w0_initial=SIREN_W0
    )
    about = {
        "description": f"siren_pytorch.SirenNet, 2 -> {SIREN_WIDTH} x {SIREN_LAYERS} sine layers -> {channels}, "
        f"w0 = w0_initial = {SIREN_W0:g}, input in [-1, 1]",
        "optimizer": f"Adam lr {SIREN_LR:g} (betas 0.9, 0.999), constant",
    }
    return CoordinateAdapter(net, "signed"), {"lr": SIREN_LR}, about


def hash_table_log2(budget: int, channels: int) -> int:
    """log2 rows per level of the nerfstudio table whose size is nearest (in log scale)
    to what the budget leaves after the decoder."""
    decoder = mlp_param_count(
        HASH_LEVELS * HASH_FEATURES, HASH_DEFAULTS.decoder_width, HASH_DEFAULTS.decoder_layers, channels
    )
    return max(1, round(math.log2(max(budget - decoder, 2) / (HASH_LEVELS * HASH_FEATURES))))


def build_nerfstudio_peer(size: int, budget: int, channels: int) -> tuple[nn.Module, dict, dict]:
    """nerfstudio's torch HashEncoding + its torch MLP of our decoder's shape, Adam settings, a description."""
    from nerfstudio.field_components.encodings import HashEncoding
    from nerfstudio.field_components.mlp import MLP

    log2_table = hash_table_log2(budget, channels)
    encoding = HashEncoding(
        num_levels=HASH_LEVELS,
        min_res=HASH_COARSEST,
        max_res=size,
        log2_hashmap_size=log2_table,
        features_per_level=HASH_FEATURES,
        implementation="torch",
    )
    decoder = MLP(
        in_dim=HASH_LEVELS * HASH_FEATURES,
        num_layers=HASH_DEFAULTS.decoder_layers,
        layer_width=HASH_DEFAULTS.decoder_width,
        out_dim=channels,
        activation=nn.ReLU(),
        out_activation=None,
        implementation="torch",
    )
    about = {
        "description": f"nerfstudio HashEncoding(implementation='torch'), {HASH_LEVELS} levels x {HASH_FEATURES}, "
        f"resolution {HASH_COARSEST}..{size}, 2^{log2_table} rows per level, on (x, y, 0); nerfstudio MLP "
        f"{HASH_LEVELS * HASH_FEATURES} -> {HASH_DEFAULTS.decoder_width} "
        f"x {HASH_DEFAULTS.decoder_layers - 1} -> {channels}, ReLU",
        "optimizer": f"Adam lr {HASH_LR:g}, betas (0.9, 0.99), eps 1e-15, constant",
    }
    model = CoordinateAdapter(nn.Sequential(encoding, decoder), "xy0")
    return model, {"lr": HASH_LR, "betas": (0.9, 0.99), "eps": 1e-15}, about


def check_peers_importable(peers: list[str]) -> None:
    """Exit with the install command when a requested peer's package is missing."""
    modules = {"siren-pytorch": "siren_pytorch", "nerfstudio-hash": "nerfstudio.field_components.encodings"}
    for peer in peers:
        try:
            __import__(modules[peer])
        except ImportError as error:
            sys.exit(f"error: peer {peer!r} needs the bench extra ({error}); install it with:\n  {INSTALL_COMMAND}")


def crossings(history: list[tuple[int, float, float]], setup_seconds: float) -> dict:
    """First evaluation at or above each target.

    Args:
        history: (step, training seconds, PSNR dB) per evaluation, in order.
        setup_seconds: added to the training seconds.

    Returns:
        {"35": {"seconds": s, "step": n} or None, "40": ...}.
    """
    reached = {}
    for target in TARGETS_DB:
        hit = next(((step, seconds) for step, seconds, value in history if value >= target), None)
        reached[f"{target:g}"] = None if hit is None else {"seconds": round(setup_seconds + hit[1], 2), "step": hit[0]}
    return reached


def run_record(
    seed: int,
    setup_seconds: float,
    steps: int,
    train_seconds: float,
    history: list[tuple[int, float, float]],
    cap: float | None,
) -> dict:
    """One run's JSON record (seconds are wall-clock, evaluation excluded)."""
    return {
        "seed": seed,
        "setup_seconds": round(setup_seconds, 2),
        "steps": steps,
        "train_seconds": round(train_seconds, 2),
        "ran_seconds": round(setup_seconds + train_seconds, 2),
        "final_psnr": history[-1][2] if history else None,
        "reached": crossings(history, setup_seconds),
        "cap_seconds": cap,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "history": [[step, round(seconds, 3), round(value, 3)] for step, seconds, value in history],
    }


def run_rbfield(name: str, pixels: np.ndarray, args, seed: int) -> tuple[dict, dict]:
    """Fit one rbfield preset with the library's trainer until 40 dB or --steps.

    Returns:
        (run record, {"trainable_params", "description", "optimizer"}).
    """
    config = TrainConfig(steps=args.steps, seed=seed, eval_every=args.eval_every, checkpoint_every=0, progress=False)
    signal = StoppingImageSignal(pixels, f"astronaut {args.size}", args.batch, config, max(TARGETS_DB))
    started = time.perf_counter()
    field = build_field(name, signal.spec(), args.params, seed=seed)
    field.initialize(signal)
    setup_seconds = time.perf_counter() - started
    result = fit(field, signal, config)
    history = [(entry["step"], entry["seconds"], entry["psnr"]) for entry in result.history]
    about = {
        "trainable_params": field.param_counts()["trainable"],
        "description": f"rbfield {name} preset at {parse_budget(args.params):,} trainable parameters",
        "optimizer": "Adam lr "
        + ", ".join(f"{k} {v:g}" for k, v in field.learning_rates.items())
        + f", betas (0.9, 0.99), eps 1e-15, cosine decay over {args.steps} steps",
    }
    return run_record(seed, setup_seconds, result.steps, result.seconds, history, None), about


def train_peer(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    signal: ImageSignal,
    eval_every: int,
    cap_seconds: float,
    seed: int,
    checkpoint: Path,
) -> tuple[int, float, list[tuple[int, float, float]]]:
    """Plain Adam on the pixels' MSE until 40 dB or ``cap_seconds`` of training.

    Evaluates every ``eval_every`` steps and once more when the cap ends the
    run, with the clock stopped, and then writes ``checkpoint`` (model,
    optimizer, batch generator, step, seconds, history); a run that finds
    ``checkpoint`` continues from it, since a capped peer can train for hours.

    Returns:
        (steps, training seconds, [(step, training seconds, PSNR dB), ...]).
    """
    generator = torch.Generator().manual_seed(seed)
    step, seconds, history = 0, 0.0, []
    if checkpoint.exists():
        saved = torch.load(checkpoint, weights_only=True)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        generator.set_state(saved["generator"])
        step, seconds, history = saved["step"], saved["seconds"], [tuple(entry) for entry in saved["history"]]
        print(f"    resumed from {checkpoint} at step {step}, {seconds:.1f} s", flush=True)
    while seconds < cap_seconds and not (history and history[-1][2] >= max(TARGETS_DB)):
        started = time.perf_counter()
        inputs, targets = signal.batch(step, generator)
        loss = signal.training_loss(model, inputs, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        seconds += time.perf_counter() - started
        if step % eval_every == 0 or seconds >= cap_seconds:
            value = whole_image_psnr(signal, model)
            history.append((step, seconds, value))
            print(f"    step {step:6d}  {seconds:8.1f} s  {value:6.2f} dB", flush=True)
            atomic_torch_save(
                checkpoint,
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "generator": generator.get_state(),
                    "step": step,
                    "seconds": seconds,
                    "history": history,
                },
            )
    return step, seconds, history


def run_peer(name: str, pixels: np.ndarray, args, seed: int, cap_seconds: float) -> tuple[dict, dict]:
    """Build and train one peer, resuming an interrupted run from ``OUT.NAME-seedN.pt``
    (deleted when the run ends).

    Returns:
        (run record, {"trainable_params", "description", "optimizer"}).
    """
    signal = ImageSignal(pixels, name=f"astronaut {args.size}", batch_size=args.batch)
    started = time.perf_counter()
    torch.manual_seed(seed)
    if name == "siren-pytorch":
        model, adam_settings, about = build_siren_peer(signal.channels)
    else:
        model, adam_settings, about = build_nerfstudio_peer(args.size, parse_budget(args.params), signal.channels)
    setup_seconds = time.perf_counter() - started
    optimizer = torch.optim.Adam(model.parameters(), **adam_settings)  # untimed, as in rbfield.fit
    checkpoint = Path(f"{args.out}.{name}-seed{seed}.pt")
    steps, seconds, history = train_peer(model, optimizer, signal, args.eval_every, cap_seconds, seed, checkpoint)
    checkpoint.unlink(missing_ok=True)
    about["trainable_params"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return run_record(seed, setup_seconds, steps, seconds, history, round(cap_seconds, 1)), about


def median_time(runs: list[dict], target: str) -> tuple[float, bool]:
    """Median seconds to a target over runs, and whether it was reached.

    The median is the lower middle value for an even number of runs. An
    unreached run counts as infinitely slow; when the median is such a run,
    returns (the shortest time any unreached run trained for, False): a lower bound.
    """
    times = [run["reached"][target]["seconds"] if run["reached"][target] else math.inf for run in runs]
    middle = statistics.median_low(times)
    if math.isfinite(middle):
        return middle, True
    return min(run["ran_seconds"] for run in runs if not run["reached"][target]), False


def fastest_rbfield(state: dict, target: str) -> tuple[str, float] | None:
    """(name, median seconds) of the rbfield field fastest to the target, or None if none reached it."""
    best = None
    for name, entry in state["contenders"].items():
        if entry["kind"] == "rbfield" and entry["runs"]:
            seconds, reached = median_time(entry["runs"], target)
            if reached and (best is None or seconds < best[1]):
                best = (name, seconds)
    return best


def machine_info(threads: int) -> dict:
    """CPU model, logical cores, usable cores, memory, torch and Numba threads used."""

    model = platform.processor() or platform.machine()
    memory = "?"
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        model = next(line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name"))
        meminfo = Path("/proc/meminfo").read_text()
        kib = next(int(line.split()[1]) for line in meminfo.splitlines() if line.startswith("MemTotal"))
        memory = f"{kib / 2**20:.0f} GiB"
    except (OSError, StopIteration):
        pass
    return {
        "cpu": model,
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "memory": memory,
        "threads": threads,
        "numba_threads": numba.get_num_threads(),
    }


def versions() -> dict:
    """Installed versions of Python and the packages that matter here."""
    found = {"python": platform.python_version()}
    for package in ("torch", "numba", "numpy", "rbfield", "siren-pytorch", "nerfstudio"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def exact_command() -> str:
    """The command line of this invocation, with the environment variables that change timings."""
    names = ("OMP_NUM_THREADS", "RBFIELD_DISABLE_FAST", "RBFIELD_KEEP_MALLOC")
    env = [f"{k}={shlex.quote(os.environ[k])}" for k in names if k in os.environ]
    return " ".join(env + ["python", "bench/time_to_quality.py"] + [shlex.quote(a) for a in sys.argv[1:]])


def format_time(runs: list[dict], target: str) -> str:
    seconds, reached = median_time(runs, target)
    return f"{seconds:.1f}" if reached else f"> {seconds:.1f}"


def ratio_cell(runs: list[dict], target: str, fastest: tuple[str, float] | None) -> str:
    """A peer's median time over the fastest rbfield field's ("x" times; ">=" if a lower bound)."""
    if fastest is None:
        return "n/a"
    seconds, reached = median_time(runs, target)
    return f"{seconds / fastest[1]:.1f}x" if reached else f">= {seconds / fastest[1]:.1f}x"


def verdicts(state: dict) -> list[str]:
    """One line per peer on the time-to-40-dB check."""
    fastest = fastest_rbfield(state, "40")
    if fastest is None:
        return ["- no rbfield field reached 40 dB, so there is no ratio to check."]
    lines = []
    for name, needed in PEER_TARGET_RATIOS.items():
        entry = state["contenders"].get(name)
        if not entry or not entry["runs"]:
            continue
        seconds, reached = median_time(entry["runs"], "40")
        ratio = seconds / fastest[1]
        if ratio >= needed:
            verdict = "met" + ("" if reached else f" (lower bound: {name} did not reach 40 dB within its cap)")
        elif reached:
            verdict = "NOT met"
        else:
            verdict = "inconclusive (the cap was too short to show the ratio)"
        bound = "" if reached else ">= "
        lines.append(
            f"- {fastest[0]} reaches 40 dB {bound}{ratio:.1f}x sooner than {name} "
            f"(target >= {needed:g}x): **{verdict}**."
        )
    return lines


def table_rows(state: dict) -> list[str]:
    """The results table: one row per contender that has runs (medians over its runs)."""
    fastest = {target: fastest_rbfield(state, target) for target in ("35", "40")}
    rows = [
        "| contender | trainable params | runs | s to 35 dB | s to 40 dB | steps to 40 dB | final PSNR (dB) "
        "| setup s | x fastest rbfield, 35 dB | x fastest rbfield, 40 dB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, entry in state["contenders"].items():
        runs = entry["runs"]
        if not runs:
            continue
        steps = [run["reached"]["40"]["step"] for run in runs if run["reached"]["40"]]
        ratios = [ratio_cell(runs, t, fastest[t]) if entry["kind"] == "peer" else "" for t in ("35", "40")]
        rows.append(
            f"| {name} | {entry['trainable_params']:,} | {len(runs)} | {format_time(runs, '35')} | "
            f"{format_time(runs, '40')} | {statistics.median(steps) if steps else '-'} | "
            f"{statistics.median(run['final_psnr'] for run in runs):.2f} | "
            f"{statistics.median(run['setup_seconds'] for run in runs):.1f} | {ratios[0]} | {ratios[1]} |"
        )
    return rows


def markdown(state: dict) -> str:
    """The report: command, machine, versions, setting, the table, each contender's settings, the checks."""
    s, m, v = state["settings"], state["machine"], state["versions"]
    pixels = min(s["batch"], s["size"] ** 2)
    details = [
        f"- **{name}**: {e['description']}; {e['optimizer']}"
        + (f"; cap {e['runs'][-1]['cap_seconds']} s of training" if e["kind"] == "peer" else "")
        for name, e in state["contenders"].items()
        if e["runs"]
    ]
    loads = [run["load_average_1min"] for e in state["contenders"].values() for run in e["runs"]] or [math.nan]
    threads = "on 2 threads" if m["threads"] == 2 else f"asked on 2 threads, run on {m['threads']}"
    return "\n".join(
        [
            "# Time to quality: astronaut photo",
            "",
            f"Command: `{state['command']}`",
            "",
            f"Machine: {m['cpu']}, {m['logical_cores']} logical cores ({m['usable_cores']} usable), {m['memory']}; "
            f"{m['threads']} torch thread(s), {m['numba_threads']} Numba thread(s). 1-minute load average after "
            f"each run: {min(loads):.2f} to {max(loads):.2f} (a load above the thread count means other jobs "
            "shared the CPU).",
            "",
            "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
            "",
            f"Setting: scikit-image `astronaut`, {s['size']}x{s['size']} RGB; {pixels:,} pixels per step"
            f"{' (every pixel)' if pixels == s['size'] ** 2 else ', drawn at random'}; whole-image PSNR every "
            f"{s['eval_every']} steps with the clock stopped. Time to X dB = setup (build; NeuRBF's RBF placement) "
            "+ training seconds at the first evaluation >= X dB; median over runs (seeds 0, 1, ...). "
            f'"> t": not reached within t seconds. rbfield runs stop at 40 dB or after {s["steps"]} steps.',
            "",
            *table_rows(state),
            "",
            *details,
            "",
            f"Time to 40 dB against the peers ({threads}):",
            "",
            *(verdicts(state) or ["- no peer ran yet."]),
            "",
        ]
    )


def load_state(path: Path, settings: dict) -> dict:
    """The results JSON to resume from, or a fresh one; exits if its settings differ."""
    if not path.exists():
        return {"settings": settings, "contenders": {}}
    state = json.loads(path.read_text())
    if state["settings"] != settings:
        sys.exit(
            f"error: {path} holds runs made with other settings ({state['settings']}); pass another --out or delete it"
        )
    return state


def save(state: dict, out: str) -> None:
    """Write OUT.json (everything, histories included) and OUT.md (the report), atomically."""
    atomic_write_json(Path(out + ".json"), state)
    atomic_write_bytes(Path(out + ".md"), markdown(state).encode())


def run_contender(state: dict, name: str, kind: str, repeats: int, run, out: str) -> None:
    """Do the runs a contender still lacks, saving after each; ``run(seed)`` -> (record, about)."""
    entry = state["contenders"].setdefault(name, {"kind": kind, "runs": []})
    for seed in range(len(entry["runs"]), repeats):
        print(f"{name}: run {seed + 1} of {repeats}", flush=True)
        record, about = run(seed)
        entry.update(about)
        entry["runs"].append(record)
        save(state, out)
        reached = ", ".join(
            f"{t} dB at {r['seconds']} s" if r else f"{t} dB not reached" for t, r in record["reached"].items()
        )
        print(f"{name}: {reached} ({record['steps']} steps, final {record['final_psnr']:.2f} dB)", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fields", default="neurbf,instant-ngp", help="rbfield presets")
    parser.add_argument("--peers", default="siren-pytorch,nerfstudio-hash", help="'' for none")
    parser.add_argument("--params", default="512k", help="trainable parameters of rbfield's fields and the hash peer")
    parser.add_argument("--size", type=int, default=512, help="photo side; below 512 a centre crop (quick checks)")
    parser.add_argument("--batch", type=int, default=2**18, help="pixels per step, for every contender")
    parser.add_argument("--steps", type=int, default=2000, help="rbfield fields: cosine schedule length and step limit")
    parser.add_argument("--eval-every", type=int, default=25)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="runs per rbfield field")
    parser.add_argument("--peer-repeats", type=int, default=1, help="runs per peer")
    parser.add_argument(
        "--cap", type=float, default=None, help="training seconds per peer run (default: target ratio x T x 1.5)"
    )
    parser.add_argument("--out", default="bench/results/time_to_quality", help="writes OUT.md and OUT.json")
    args = parser.parse_args()
    if not 16 <= args.size <= 512:
        parser.error("--size must be between 16 and 512")
    fields = [f for f in args.fields.split(",") if f]
    peers = [p for p in args.peers.split(",") if p]
    if any(f not in PRESETS for f in fields) or any(p not in PEER_TARGET_RATIOS for p in peers):
        parser.error(f"--fields come from {list(PRESETS)}, --peers from {list(PEER_TARGET_RATIOS)}")
    check_peers_importable(peers)
    torch.set_num_threads(args.threads)
    numba_kernels()  # Numba's thread count follows torch's

    settings = {
        "photo": "astronaut",
        "size": args.size,
        "params": parse_budget(args.params),
        "batch": args.batch,
        "steps": args.steps,
        "eval_every": args.eval_every,
        "threads": args.threads,
    }
    state = load_state(Path(args.out + ".json"), settings)
    state.update(command=exact_command(), machine=machine_info(args.threads), versions=versions())
    pixels = load_photo(args.size)
    for name in fields:
        run_contender(state, name, "rbfield", args.repeats, partial(run_rbfield, name, pixels, args), args.out)
    fastest = fastest_rbfield(state, "40")
    for name in peers:
        if args.cap is None and fastest is None:
            sys.exit("error: no rbfield field reached 40 dB, so the peers' caps are undefined; give --cap SECONDS")
        cap = args.cap if args.cap is not None else PEER_TARGET_RATIOS[name] * fastest[1] * CAP_FACTOR
        run = partial(run_peer, name, pixels, args, cap_seconds=cap)
        run_contender(state, name, "peer", args.peer_repeats, run, args.out)
    save(state, args.out)
    print(markdown(state))
    return 0


if __name__ == "__main__":
    sys.exit(main())
