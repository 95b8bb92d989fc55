"""neurbf against instant-ngp on the large real photos, at equal budget and equal training time (or steps).

The large-image setting: each field fits each photo (by default the 2560-pixel
photos of ``../shared/data/images``) at the same trainable budget (4.3M, the
NeuRBF paper's DIV2K budget) for the same seconds of training, one fit at a
time in this process on ``--threads`` threads. PSNR on a fixed subset of 2^16
pixels every ``--eval-every`` steps (the clock stopped) gives the time to reach
45 and 50 dB; the end of each fit is scored on every pixel. ``--steps N``
fits for N steps instead of a time, to compare what each step learns.

    python bench/large_photos.py --time 240
    python bench/large_photos.py --steps 2000 --photos storm-1920x1280.jpg
    python bench/large_photos.py --time 240 --batch 65536 --fields neurbf \\
        --neurbf '{"grid_share": 0.75, "grid_levels": 16}' --label grid-heavy
    python bench/large_photos.py --steps 2000 --photos storm-1920x1280.jpg \\
        --train '{"betas": [0.9, 0.999]}' --label beta2-999

``--train`` overrides the training settings (``rbfield.TrainConfig``: Adam's
betas and eps, the final learning-rate fraction, the seed) for every field of
the run; give it a ``--label`` too, which names the variant in the table (a
digest of the overrides names the cached fit).

Each finished fit is kept in ``--work`` as a small JSON named by the photo, the
field, the label, the budget, the time, the batch and a digest of the field's
settings; a second run reuses it, so an interrupted benchmark loses at most the
fit in progress. Timings are only comparable within one run on a quiet machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch
from PIL import Image

import rbfield
from data_paths import PHOTOS
from image_crops import cached_fit, field_settings, json_overrides, settings_digest
from rbfield.io import atomic_write_json
from rbfield.ops import keep_freed_memory_mapped, return_freed_memory
from rbfield.signals.image_defaults import DEFAULT_BATCH

DEFAULT_PHOTOS = "ladybird-2560x1600.jpg,twowings-2560x1600.jpg,wood-2560x1920.jpg"
THRESHOLDS = (45.0, 50.0)


def seconds_to(history: list[dict], threshold: float) -> float | None:
    """Training seconds of the first evaluation at or above ``threshold`` dB, or None (an image of at
    most 2^16 pixels is evaluated whole, as ``psnr``)."""
    for entry in history:
        if entry.get("psnr_subset", entry.get("psnr")) >= threshold:
            return entry["seconds"]
    return None


def photo_spec(path: Path) -> rbfield.SignalSpec:
    """The image signal's spec of the photo at ``path``, from its header (the presets choose by size)."""
    with Image.open(path) as image:
        return rbfield.SignalSpec("image", 2, len(image.getbands()), image.size)


def fit_photo(path: Path, field: str, settings, train_overrides: dict, args: argparse.Namespace) -> dict:
    """One fit, with ``train_overrides`` replacing ``rbfield.TrainConfig`` defaults; returns its steps,
    seconds per step, subset curve and whole-image PSNR/SSIM."""
    signal = rbfield.ImageSignal.from_path(path, batch_size=args.batch)
    model = rbfield.build_field(field, signal.spec(), rbfield.parse_budget(args.params), seed=0, settings=settings)
    started = time.perf_counter()
    model.initialize(signal)
    setup = time.perf_counter() - started
    train = rbfield.TrainConfig(
        **train_overrides,
        steps=args.steps,
        time_budget=None if args.steps else args.time,
        eval_every=args.eval_every,
        checkpoint_every=0,
        checkpoint_seconds=0,
        progress=False,
    )
    result = rbfield.fit(model, signal, train)
    final = signal.final_metrics(model)
    return {
        "steps": result.steps,
        "seconds_per_step": result.seconds / result.steps,
        "setup_seconds": setup,
        "psnr": final["psnr"],
        "ssim": final["ssim"],
        "history": result.history,
        "trainable": model.param_counts()["trainable"],
    }


def training_overrides(args: argparse.Namespace) -> dict:
    """``--train`` as keyword arguments of ``rbfield.TrainConfig`` (JSON lists become tuples); exits
    with a message on a name ``TrainConfig`` does not have or another option sets."""
    overrides = json_overrides(args.train)
    set_by_options = {"steps", "time_budget", "eval_every", "checkpoint_every", "checkpoint_seconds", "progress"}
    known = {item.name for item in dataclasses.fields(rbfield.TrainConfig)} - set_by_options
    unknown = sorted(set(overrides) - known)
    if unknown:
        sys.exit(f"--train takes {', '.join(sorted(known))}, not {', '.join(unknown)}")
    return overrides


def training_length(args: argparse.Namespace) -> str:
    """The fit's length for cache names: "2000steps" or "240s"."""
    return f"{args.steps}steps" if args.steps else f"{args.time:g}s"


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", default=DEFAULT_PHOTOS, help="file names in --images, comma-separated")
    parser.add_argument("--images", default=str(PHOTOS))
    parser.add_argument("--fields", default="neurbf,instant-ngp")
    parser.add_argument("--params", default="4.3M")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--time", type=float, default=240.0, help="training seconds per fit")
    length.add_argument("--steps", type=int, default=None, help="training steps per fit, instead of --time")
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="pixels per step (default: the product's)")
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--neurbf", default="{}", help="JSON overrides of neurbf's image settings")
    parser.add_argument("--train", default="{}", help="JSON overrides of rbfield.TrainConfig (betas, eps, ...)")
    parser.add_argument("--label", default="preset", help="variant name: neurbf's, or every field's with --train")
    parser.add_argument("--work", default="runs/bench-large-photos")
    parser.add_argument("--out", default="bench/results/large_photos")
    return parser.parse_args()


def main() -> int:
    args = parse_arguments()
    torch.set_num_threads(args.threads)
    keep_freed_memory_mapped()
    overrides = json_overrides(args.neurbf)
    train_overrides = training_overrides(args)
    rows = []
    for photo in args.photos.split(","):
        path = Path(args.images) / photo
        if not path.exists():
            sys.exit(f"no photo {path}")
        for field in args.fields.split(","):
            label = args.label if field == "neurbf" or train_overrides else "preset"
            settings = field_settings(field, overrides, photo_spec(path), args.params)
            tag = f"{path.stem}-{field}-{label}-{args.params}-{training_length(args)}-b{args.batch}-t{args.threads}"
            if train_overrides:
                tag += f"-train{settings_digest(train_overrides)}"
            fit = cached_fit(args.work, tag, settings, lambda: fit_photo(path, field, settings, train_overrides, args))
            return_freed_memory()
            rows.append({"photo": photo, "field": field, "label": label, **fit})
            print(f"{photo:26s} {field:12s} {label:12s} {fit['psnr']:6.2f} dB  {fit['steps']:6d} steps", flush=True)
    lines = [
        f"`python bench/large_photos.py --photos {args.photos} --fields {args.fields} --params {args.params} "
        f"{'--steps ' + str(args.steps) if args.steps else f'--time {args.time:g}'} --batch {args.batch} "
        f"--threads {args.threads}"
        + (f" --eval-every {args.eval_every}" if args.eval_every != 100 else "")
        + (f" --neurbf '{args.neurbf}'" if overrides else "")
        + (f" --train '{args.train}'" if train_overrides else "")
        + (f" --label {args.label}`" if overrides or train_overrides else "`"),
        "",
        "| photo | field | variant | steps | s / step | s to 45 dB | s to 50 dB | PSNR dB | SSIM |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        reached = [seconds_to(row["history"], threshold) for threshold in THRESHOLDS]
        times = " | ".join("-" if value is None else f"{value:.0f}" for value in reached)
        lines.append(
            f"| {row['photo']} | {row['field']} | {row['label']} | {row['steps']} | {row['seconds_per_step']:.3f} | "
            f"{times} | {row['psnr']:.2f} | {row['ssim']:.4f} |"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.md").write_text("\n".join(lines) + "\n")
    # The setting without this machine's folders.
    setting = {key: value for key, value in vars(args).items() if key not in ("images", "work", "out")}
    atomic_write_json(Path(f"{args.out}.json"), {"arguments": setting, "rows": rows})
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
