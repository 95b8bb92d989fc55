"""Image fits from 0.25 megapixels to a gigapixel: setup, step, evaluation time and peak memory.

Each input is a mosaic of the real photos in ``../shared/data/images`` (blocks of
512x512 pixels cut from them in turn), written tile by tile as a tiled BigTIFF
into a scratch folder, so no size is ever held in memory here and nothing large
is kept. Every fit runs as its own ``rbfield fit image`` process, one at a time,
and the figures come from its ``metrics.json``:

    python bench/large_images.py --sizes 0.25,1,4,16,65 --fields neurbf,instant-ngp --params 20M --steps 50
    python bench/large_images.py --sizes 1050 --fields neurbf --params 100M --steps 20 --scratch /big/disk --keep

Prints a Markdown table: field, megapixels, setup s, mean step s, step time
relative to the smallest size, evaluation s, peak resident memory (GB).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from data_paths import PHOTOS
from rbfield.signals.image_defaults import DEFAULT_BATCH

BLOCK = 512


def load_photos() -> list[np.ndarray]:
    """The shared photos as (H, W, 3) uint8 arrays."""
    from PIL import Image

    paths = sorted(PHOTOS.glob("*.jpg"))
    if not paths:
        sys.exit(f"no photos in {PHOTOS}; the shared data folder must sit beside the checkout")
    return [np.asarray(Image.open(path).convert("RGB")) for path in paths]


def block(photos: list[np.ndarray], row: int, column: int) -> np.ndarray:
    """The (BLOCK, BLOCK, 3) block of the mosaic at block coordinates (row, column)."""
    photo = photos[(row * 7 + column * 3) % len(photos)]
    rows, columns = photo.shape[0] // BLOCK, photo.shape[1] // BLOCK
    y, x = (row * 5 + column) % rows, (row + column * 11) % columns
    return photo[y * BLOCK : (y + 1) * BLOCK, x * BLOCK : (x + 1) * BLOCK]


def write_mosaic(path: Path, megapixels: float, photos: list[np.ndarray]) -> tuple[int, int]:
    """Write a 16:10 mosaic of about ``megapixels`` as a tiled BigTIFF, tile by tile; returns (width, height)."""
    import tifffile

    height = max(BLOCK, int(round((megapixels * 1e6 / 1.6) ** 0.5 / BLOCK)) * BLOCK)
    width = max(BLOCK, int(round(megapixels * 1e6 / height / BLOCK)) * BLOCK)
    tiles = (block(photos, r, c) for r in range(height // BLOCK) for c in range(width // BLOCK))
    tifffile.imwrite(path, tiles, shape=(height, width, 3), dtype=np.uint8, tile=(BLOCK, BLOCK), bigtiff=True)
    return width, height


def fit(image: Path, out: Path, field: str, params: str, steps: int, batch: int, threads: int) -> dict:
    """One ``rbfield fit image`` in its own process; returns its metrics.json."""
    command = [
        sys.executable,
        "-m",
        "rbfield.cli",
        "fit",
        "image",
        str(image),
        "--field",
        field,
        "--params",
        params,
        "--steps",
        str(steps),
        "--batch",
        str(batch),
        "--eval-every",
        "0",
        "--out",
        str(out),
        "--quiet",
    ]
    environment = {"OMP_NUM_THREADS": str(threads), "PATH": "/usr/bin:/bin"}
    completed = subprocess.run(command, capture_output=True, text=True, env=environment)
    if completed.returncode != 0:
        return {"error": completed.stderr.strip().splitlines()[-1] if completed.stderr.strip() else "failed"}
    return json.loads((out / "metrics.json").read_text())


@contextlib.contextmanager
def kept_or_temporary(scratch: str | None, keep: bool) -> Iterator[Path]:
    """``scratch`` itself when keeping the files, else a temporary folder inside it, removed afterwards."""
    if scratch is not None:
        Path(scratch).mkdir(parents=True, exist_ok=True)
    if keep:
        yield Path(scratch)
        return
    with tempfile.TemporaryDirectory(dir=scratch) as temporary:
        yield Path(temporary)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="0.25,1,4,16,65", help="megapixels, comma-separated")
    parser.add_argument("--fields", default="neurbf,instant-ngp")
    parser.add_argument("--params", default="20M")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="pixels per step (default: the product's)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--scratch", help="folder for the mosaics and runs (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the mosaics and run folders in --scratch")
    args = parser.parse_args()
    if args.keep and not args.scratch:
        parser.error("--keep needs --scratch")
    photos = load_photos()
    rows = [
        "| field | megapixels | setup s | step s | step / smallest | evaluation s | peak GB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    with kept_or_temporary(args.scratch, args.keep) as scratch:
        first_step: dict[str, float] = {}
        for size in (float(text) for text in args.sizes.split(",")):
            image = scratch / f"mosaic-{size:g}mp.tif"
            width, height = write_mosaic(image, size, photos)
            for field in args.fields.split(","):
                report = fit(
                    image, scratch / f"run-{size:g}-{field}", field, args.params, args.steps, args.batch, args.threads
                )
                if "error" in report:
                    rows.append(f"| {field} | {width * height / 1e6:.2f} | error: {report['error']} | | | | |")
                    continue
                step = report["train_seconds"] / report["steps"]
                first_step.setdefault(field, step)
                rows.append(
                    f"| {field} | {width * height / 1e6:.2f} | {report['setup_seconds']:.1f} | {step:.3f} | "
                    f"{step / first_step[field]:.2f} | {report['eval_seconds']:.1f} | "
                    f"{report['peak_rss_bytes'] / 1e9:.2f} |"
                )
                print(rows[-1], flush=True)
            if not args.keep:
                image.unlink()
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
