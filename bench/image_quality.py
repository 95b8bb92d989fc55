"""Image quality at a fixed budget: 256x256 centre crops of real photos.

Runs each field on each crop with the same trainable-parameter budget and step
count (the paper's 256^2 setting: 128K parameters, 5k steps) and writes
``bench/results/image_quality.md`` and ``.json``. Finished runs are kept in
``--work`` and skipped when the script is run again; an interrupted run
(Ctrl-C writes a checkpoint) resumes from its checkpoint, so an interrupted
benchmark loses nothing.

    python bench/image_quality.py --threads 1

Photos come from scikit-image's bundled data (no download).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from skimage import data

from rbfield.io import atomic_write_bytes, atomic_write_json
from rbfield.signals.image import ImageSignal, centre_crop, image_to_float
from rbfield.tasks.image import fit_image
from rbfield.train import TrainConfig

PHOTOS = {"astronaut": data.astronaut, "coffee": data.coffee, "chelsea": data.chelsea}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", default="astronaut,coffee,chelsea")
    parser.add_argument("--fields", default="neurbf,instant-ngp")
    parser.add_argument(
        "--mlp-fields", default="siren,ffn", help="fields run on the first photo only, with --mlp-batch"
    )
    parser.add_argument("--mlp-batch", type=int, default=2**12, help="random pixels per step for --mlp-fields")
    parser.add_argument("--params", default="128k")
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--work", default="runs/bench-image")
    parser.add_argument("--out", default="bench/results/image_quality")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    photos = args.photos.split(",")
    jobs = [(photo, field, 2**18) for photo in photos for field in args.fields.split(",")]
    jobs += [(photos[0], field, args.mlp_batch) for field in args.mlp_fields.split(",") if field]
    reports = []
    for photo, field, batch in jobs:
        run = Path(args.work) / f"{photo}-{field}-b{batch}-{args.params}-{args.steps}"
        if (run / "metrics.json").exists():
            report = json.loads((run / "metrics.json").read_text())
        else:
            pixels = image_to_float(centre_crop(PHOTOS[photo](), args.size))
            signal = ImageSignal(pixels, name=f"{photo} {args.size}x{args.size}", batch_size=batch)
            resume = (run / "checkpoint.pt").exists()
            config = TrainConfig(steps=args.steps, eval_every=500, progress=False)
            report = fit_image(signal, run, field, args.params, config, resume=resume)
        report["batch"] = min(batch, args.size**2)
        reports.append(report)
        print(f"{photo:10s} {field:12s} {report['psnr']:6.2f} dB  {report['seconds']:7.1f} s", flush=True)

    rows = [
        "| photo (256x256 crop) | field | PSNR (dB) | SSIM | trainable | total | pixels/step | steps | train s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in reports:
        rows.append(
            f"| {r['image'].split()[0]} | {r['field']} | {r['psnr']:.2f} "
            f"| {r['ssim']:.4f} | {r['trainable_params']:,} | "
            f"{r['total_params']:,} | {r['batch']:,} | {r['steps']} | {r['seconds']:.0f} |"
        )
    means = {}
    for field in args.fields.split(","):
        values = [r["psnr"] for r in reports if r["field"] == field and r["batch"] == min(2**18, args.size**2)]
        means[field] = statistics.mean(values)
    rows.append("")
    rows.append("Mean PSNR over the photos: " + ", ".join(f"{k} {v:.2f} dB" for k, v in means.items()) + ".")
    machine = f"{platform.processor() or platform.machine()}, {args.threads} thread(s), torch {torch.__version__}"
    command = "python bench/image_quality.py " + " ".join(sys.argv[1:])
    text = "\n".join(
        [
            f"Command: `{command}`",
            f"Machine: {machine}; run finished {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
            "",
            *rows,
            "",
        ]
    )
    atomic_write_bytes(Path(args.out + ".md"), text.encode())
    atomic_write_json(
        Path(args.out + ".json"),
        {
            "command": command,
            "machine": machine,
            "means": means,
            "runs": [{k: v for k, v in r.items() if k != "history"} for r in reports],
        },
    )
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
