"""NeuRBF against the other image fields on many 256x256 crops of real photos.

The paper's small-image setting (256x256 crops, 128K trainable parameters,
5,000 steps, every pixel every step) on 32 crops of 16 real photos: smooth
skies and out-of-focus backgrounds, straight edges, foliage, fur, faces,
microscopy, JPEG-compressed and clean. The photos come in two sets of eight:

* ``tuning``: the crops the image presets were tuned on;
* ``held-out``: crops of photos the tuning never saw, to check the settings.

For every crop the script fits each field, then writes a table (PSNR per field
and neurbf minus instant-ngp, beside the crop's mean gradient magnitude) to
``--out``.md/.json and a plot of the difference against the gradient to
``--out``.png. Each finished fit is kept in ``--work`` as a small JSON, named
by the crop, the field, the setting and a digest of the field's settings, and
skipped when the script runs again (a changed preset is fitted anew), so an
interrupted benchmark loses at most the fit in progress::

    python bench/image_crops.py --crops held-out
    python bench/image_crops.py --crops tuning --scale 2 --params 32k --steps 1500 \\
        --neurbf '{"grid_share": 0.5}' --label grid-half

``--scale 2`` area-averages each crop to 128x128 (a cheap proxy with the same
content); ``--neurbf`` replaces fields of neurbf's image settings (JSON), and
``--label`` names such a variant in the work folder and the table.
``--mlp-pixels 4096`` gives siren and ffn that many random pixels a step instead
of all of them: at 128K parameters a full-batch SIREN step costs about 16 times
a 4,096-pixel one, hours a crop on a CPU; such rows are a lower bound at equal
steps, not at equal compute.

Grey photos (``camera``, ``brick``, ``grass``, ``gravel``) are repeated into
three channels, so every crop has 196,608 values for the budget. The large
photos come from ``../shared/data/images`` (``--images``); the rest from
scikit-image's bundled data (no download).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import platform
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage import data

import rbfield
from rbfield.fields import default_settings
from rbfield.io import atomic_write_bytes, atomic_write_json

#: photo -> (source, content). Source: a scikit-image data function or a file in --images.
PHOTOS = {
    # tuning
    "astronaut": ("skimage", "face, flag, clean PNG"),
    "chelsea": ("skimage", "fur, eyes, clean PNG"),
    "rocket": ("skimage", "sky, lattice towers, JPEG"),
    "retina": ("skimage", "smooth tissue, vessels, JPEG"),
    "brick": ("skimage", "straight edges, grey"),
    "elephants": ("elephants-5640x3172.jpg", "painting texture, JPEG"),
    "storm": ("storm-1920x1280.jpg", "smooth sky, JPEG"),
    "twowings": ("twowings-2560x1600.jpg", "out of focus, JPEG"),
    # held-out
    "coffee": ("skimage", "cup, wood grain, clean PNG"),
    "hubble_deep_field": ("skimage", "point stars on black, JPEG"),
    "immunohistochemistry": ("skimage", "microscopy, clean PNG"),
    "camera": ("skimage", "person, tripod, grey"),
    "gravel": ("skimage", "dense stones, grey"),
    "grass": ("skimage", "dense foliage, grey"),
    "ladybird": ("ladybird-2560x1600.jpg", "out of focus foliage, JPEG"),
    "wood": ("wood-2560x1920.jpg", "fine grain, smooth, JPEG"),
}
TUNING = ["astronaut", "chelsea", "rocket", "retina", "brick", "elephants", "storm", "twowings"]
HELD_OUT = [photo for photo in PHOTOS if photo not in TUNING]
#: Fields that ``--mlp-pixels`` may give fewer pixels a step (a full-batch SIREN at 128K costs hours a crop here).
MLP_FIELDS = ("siren", "ffn")
#: Crop centres as fractions of the photo's width and height.
POSITIONS = ((0.5, 0.5), (0.25, 0.25))


def crop_names(which: str) -> list[str]:
    """``tuning``, ``held-out``, ``all`` or names like ``storm@0.5,0.5`` joined by ``;``."""
    sets = {"tuning": TUNING, "held-out": HELD_OUT, "all": TUNING + HELD_OUT}
    if which in sets:
        return [f"{photo}@{x},{y}" for photo in sets[which] for x, y in POSITIONS]
    return [name for name in which.split(";") if name]


def load_photo(photo: str, images: Path) -> np.ndarray:
    """(H, W, 3) uint8 pixels of a photo; grey photos repeated into three channels."""
    source = PHOTOS[photo][0]
    pixels = getattr(data, photo)() if source == "skimage" else np.asarray(Image.open(images / source).convert("RGB"))
    return np.repeat(pixels[:, :, None], 3, axis=2) if pixels.ndim == 2 else pixels


def crop(pixels: np.ndarray, fx: float, fy: float, size: int, scale: int) -> np.ndarray:
    """The (size/scale, size/scale, 3) float32 crop centred at (fx, fy) of the photo, in [0, 1],
    area-averaged by ``scale`` (kept inside the photo)."""
    height, width = pixels.shape[:2]
    top = min(max(int(fy * height) - size // 2, 0), height - size)
    left = min(max(int(fx * width) - size // 2, 0), width - size)
    patch = pixels[top : top + size, left : left + size].astype(np.float32) / 255.0
    side = size // scale
    return patch.reshape(side, scale, side, scale, 3).mean(axis=(1, 3))


def mean_gradient(patch: np.ndarray) -> float:
    """Mean gradient magnitude of the crop's luminance (mean of the channels), in % of full scale per pixel."""
    grey = patch.mean(axis=2)
    gy, gx = np.gradient(grey)
    return float(np.mean(np.hypot(gx, gy)) * 100.0)


def fit_crop(
    patch: np.ndarray, name: str, field: str, settings, params: str, steps: int, seed: int, pixels_per_step: int
) -> dict:
    """Fit one field with its image ``settings`` to one crop from ``seed``, drawing ``pixels_per_step``
    pixels a step (all of them when that is at least the crop's); the final whole-crop PSNR (dB) and the
    seconds."""
    signal = rbfield.ImageSignal(patch, name=name, batch_size=pixels_per_step)
    model = rbfield.build_field(field, signal.spec(), params, seed=seed, settings=settings)
    started = time.perf_counter()
    model.initialize(signal)
    config = rbfield.TrainConfig(steps=steps, eval_every=steps, progress=False, seed=seed)
    result = rbfield.fit(model, signal, config)
    return {
        "psnr": result.history[-1]["psnr"],
        "seconds": time.perf_counter() - started,
        "trainable": model.param_counts()["trainable"],
    }


def json_overrides(text: str) -> dict:
    """A JSON object of settings as keyword arguments: its lists become tuples, as the settings hold them."""
    return {key: tuple(value) if isinstance(value, list) else value for key, value in json.loads(text).items()}


def field_settings(field: str, neurbf_overrides: dict, spec: rbfield.SignalSpec | None = None, budget=None):
    """A field's image settings: its preset's (for an image of ``spec`` at ``budget``; None: a crop), with
    ``neurbf_overrides`` replacing fields for neurbf."""
    settings = default_settings(field, "image", spec, budget)
    return replace(settings, **neurbf_overrides) if field == "neurbf" else settings


def settings_digest(settings) -> str:
    """8 hex digits naming a field's full image settings, so a changed preset is fitted again."""
    return hashlib.sha256(repr(settings).encode()).hexdigest()[:8]


def cached_fit(work: str | Path, tag: str, settings, run) -> dict:
    """The fit kept in ``work`` under ``tag`` and the digest of ``settings``, else ``run()``, kept there."""
    saved = Path(work) / f"{tag}-{settings_digest(settings)}.json"
    if saved.exists():
        return json.loads(saved.read_text())
    fit = run()
    atomic_write_json(saved, fit)
    return fit


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--crops", default="all", help="tuning, held-out, all, or names photo@fx,fy joined by ';'")
    parser.add_argument("--fields", default="neurbf,instant-ngp")
    parser.add_argument("--params", default="128k")
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--size", type=int, default=256, help="crop side in the photo's pixels")
    parser.add_argument("--scale", type=int, default=1, help="area-average the crop by this factor")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="seeds every field's initialisation and batches")
    parser.add_argument(
        "--mlp-pixels",
        type=int,
        default=0,
        help="random pixels a step for siren and ffn (default 0: every pixel, as the other fields)",
    )
    parser.add_argument("--neurbf", default="{}", help="JSON overrides of neurbf's image settings")
    parser.add_argument("--label", default="preset", help="name of this neurbf variant")
    parser.add_argument("--images", default=str(Path(__file__).resolve().parents[1].parent / "shared/data/images"))
    parser.add_argument("--work", default="runs/bench-crops")
    parser.add_argument("--out", default="bench/results/image_crops")
    return parser.parse_args()


def run_all(args: argparse.Namespace) -> list[dict]:
    """Every (crop, field) fit, reusing finished ones from --work; one dict per crop."""
    overrides = json_overrides(args.neurbf)
    fields = args.fields.split(",")
    rows, loaded, pixels = [], None, None
    for name in crop_names(args.crops):
        photo, position = name.split("@")
        fx, fy = (float(value) for value in position.split(","))
        if photo != loaded:  # crops of one photo come together: keep only the current photo
            loaded, pixels = photo, load_photo(photo, Path(args.images))
        patch = crop(pixels, fx, fy, args.size, args.scale)
        row = {"crop": name, "content": PHOTOS[photo][1], "gradient": mean_gradient(patch), "fits": {}}
        every_pixel = patch.shape[0] * patch.shape[1]
        for field in fields:
            label = args.label if field == "neurbf" else "preset"
            settings = field_settings(field, overrides)
            batch = args.mlp_pixels if field in MLP_FIELDS and 0 < args.mlp_pixels < every_pixel else every_pixel
            tag = f"{name}-{field}-{label}-{args.params}-{args.steps}-x{args.scale}-seed{args.seed}"
            tag += f"-px{batch}" if batch < every_pixel else ""
            fit = cached_fit(
                args.work,
                tag.replace(",", "_"),
                settings,
                lambda: fit_crop(patch, name, field, settings, args.params, args.steps, args.seed, batch),
            )
            row["fits"][field] = fit
            print(f"{name:28s} {field:12s} {fit['psnr']:6.2f} dB {fit['seconds']:7.1f} s", flush=True)
        rows.append(row)
    return rows


def table(rows: list[dict], fields: list[str]) -> list[str]:
    """Markdown rows: one per crop, then the means."""
    compare = "neurbf" in fields and "instant-ngp" in fields
    header = "| crop | content | gradient (%) | " + " | ".join(f"{f} (dB)" for f in fields)
    header += " | neurbf - instant-ngp (dB) |" if compare else " |"
    lines = [header, "| --- | --- | ---: | " + " | ".join("---:" for _ in fields) + (" | ---: |" if compare else " |")]
    for row in rows:
        cells = [f"{row['fits'][f]['psnr']:.2f}" for f in fields]
        line = f"| {row['crop']} | {row['content']} | {row['gradient']:.2f} | " + " | ".join(cells)
        lines.append(line + (f" | {difference(row):+.2f} |" if compare else " |"))
    means = [f"**{statistics.mean(row['fits'][f]['psnr'] for row in rows):.2f}**" for f in fields]
    mean_line = "| **mean** | | | " + " | ".join(means)
    if compare:
        differences = [difference(row) for row in rows]
        mean_line += f" | **{statistics.mean(differences):+.2f}** (min {min(differences):+.2f}) |"
    return [*lines, mean_line + ("" if compare else " |")]


def difference(row: dict) -> float:
    return row["fits"]["neurbf"]["psnr"] - row["fits"]["instant-ngp"]["psnr"]


def plot(rows: list[dict], path: Path, title: str) -> None:
    """neurbf minus instant-ngp per crop against the crop's mean gradient magnitude."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for row in rows:
        held_out = row["crop"].split("@")[0] in HELD_OUT
        axes.scatter(row["gradient"], difference(row), color="tab:orange" if held_out else "tab:blue", s=22)
        axes.annotate(row["crop"].split("@")[0], (row["gradient"], difference(row)), fontsize=6)
    axes.axhline(0.0, color="black", linewidth=0.8)
    axes.set_xscale("log")
    ticks = [0.25, 0.5, 1, 2, 4, 8]
    axes.set_xticks(ticks, [f"{tick:g}" for tick in ticks])
    axes.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes.set_xlabel("mean gradient magnitude of the crop (% of full scale per pixel)")
    axes.set_ylabel("neurbf - instant-ngp PSNR (dB)")
    axes.set_title(title, fontsize=9)
    axes.scatter([], [], color="tab:blue", label="tuning photos")
    axes.scatter([], [], color="tab:orange", label="held-out photos")
    axes.legend(fontsize=8)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())


def main() -> int:
    args = parse_arguments()
    torch.set_num_threads(args.threads)
    rows = run_all(args)
    fields = args.fields.split(",")
    command = "python bench/image_crops.py " + " ".join(sys.argv[1:])
    machine = f"{platform.processor() or platform.machine()}, {args.threads} thread(s), torch {torch.__version__}"
    setting = f"{args.size // args.scale}x{args.size // args.scale}, {args.params}, {args.steps} steps"
    text = "\n".join(
        [
            f"Command: `{command}`",
            f"Setting: {setting}; neurbf variant `{args.label}` {args.neurbf}.",
            f"Machine: {machine}; finished {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
            "",
            *table(rows, fields),
            "",
        ]
    )
    out = Path(args.out)
    atomic_write_bytes(out.with_suffix(".md"), text.encode())
    atomic_write_json(out.with_suffix(".json"), {"command": command, "machine": machine, "rows": rows})
    if "neurbf" in fields and "instant-ngp" in fields:
        plot(rows, out.with_suffix(".png"), setting)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
