"""Where the time and memory of an image fit go as the image grows.

Times each stage of a NeuRBF image fit on one large photo, as the library runs
it before ``rbfield.raster`` (``--stages today``: a float copy of the image, a
coordinate table, a whole-image Sobel pass and k-means over every pixel, as
``ImageSignal`` and ``Field.initialize`` then did, and the trainer's step), and
the same stages with the bounded building blocks of ``rbfield.raster`` that
``ImageSignal`` now uses. Each stage
reports wall seconds and the process's peak resident memory above what it
held before the stage (the peak is reset per stage through
/proc/self/clear_refs). Stages that would run for minutes are timed on a part
and scaled up; the table says which.

    python bench/large_image_profile.py IMAGE --params 1M --steps 4 --stages today
    python bench/large_image_profile.py IMAGE --params 1M --steps 4 --stages raster

The 24-megapixel IMAGE of bench/log/2026-12-large-image-profile.md is the
elephants photo upscaled with Pillow:
``Image.open("elephants-5640x3172.jpg").resize((6532, 3674), Image.LANCZOS).save(IMAGE, quality=95)``.

``--stages today`` needs the most memory (float copies of the image); run the
two groups in separate processes.
"""

from __future__ import annotations

import argparse
import time
from contextlib import contextmanager

import numpy as np
import torch

from rbfield.encodings.rbf_init import cluster_covariances, weighted_kmeans
from rbfield.fields import build_field, parse_budget
from rbfield.metrics import psnr, ssim
from rbfield.train import TrainConfig, make_adam

ROWS = []


def _status(key: str) -> int:
    with open("/proc/self/status") as file:
        for line in file:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


@contextmanager
def stage(name: str, note: str = ""):
    """Time a stage and record its peak RSS above the RSS at its start."""
    with open("/proc/self/clear_refs", "w") as file:
        file.write("5")  # resets VmHWM to the current RSS
    before = _status("VmRSS:")
    started = time.perf_counter()
    extra = {}
    yield extra
    seconds = extra.get("seconds", time.perf_counter() - started)
    peak = _status("VmHWM:") - before
    ROWS.append((name, seconds, peak, extra.get("note", note)))
    print(f"{name}: {seconds:.2f} s, peak +{peak / 1e6:.0f} MB {extra.get('note', note)}", flush=True)


def timed(run) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def step_parts(field, optimizer, batch, steps: int) -> dict:
    """Seconds of batch drawing, neighbour search, the rest of the forward pass,
    backward and Adam, per step (means over the steps after the first), and the
    first step's total."""
    rbf = field.rbf_encodings()[0]
    search = rbf.neighbours
    spent = []

    def timed_search(x):
        started = time.perf_counter()
        found = search(x)
        spent.append(time.perf_counter() - started)
        return found

    rbf.neighbours = timed_search
    parts = {"batch": [], "neighbours": [], "forward rest": [], "backward": [], "adam": []}
    for step in range(steps):
        started = time.perf_counter()
        coords, targets = batch(step, torch.Generator().manual_seed(step))
        parts["batch"].append(time.perf_counter() - started)
        spent.clear()
        started = time.perf_counter()
        loss = torch.mean((field(coords) - targets) ** 2)
        parts["neighbours"].append(sum(spent))
        parts["forward rest"].append(time.perf_counter() - started - sum(spent))
        optimizer.zero_grad(set_to_none=True)
        parts["backward"].append(timed(loss.backward))
        parts["adam"].append(timed(optimizer.step))
    del rbf.neighbours
    means = {name: float(np.mean(values[1:] if len(values) > 1 else values)) for name, values in parts.items()}
    means["first step"] = sum(values[0] for values in parts.values())
    return means


def kmeans_stage(points: np.ndarray, weights: np.ndarray, n_kernels: int, name: str) -> np.ndarray:
    """Time weighted k-means (seeding + 1 assignment, then one Lloyd iteration) and scale to the 10 used."""
    with stage(f"{name}: k-means seeding + first assignment") as row:
        weights = weights + 1e-3 * max(weights.mean(), 1e-12)
        centres, _ = weighted_kmeans(points, weights, n_kernels, n_iterations=0)
    first = ROWS[-1][1]
    with stage(f"{name}: k-means, 10 Lloyd iterations", "scaled from 1 iteration") as row:
        started = time.perf_counter()
        centres, assignment = weighted_kmeans(points, weights, n_kernels, n_iterations=1)
        row["seconds"] = 10 * max(time.perf_counter() - started - first, 0.0)
    with stage(f"{name}: cluster covariances"):
        cluster_covariances(points, weights, centres, assignment, 0.5, 1e-4, 0.25)
    return centres


def run_today(path: str, params: str, steps: int, batch_size: int) -> None:
    from skimage.filters import sobel

    from rbfield.signals.image import load_image, pixel_centres, reconstruct
    from rbfield.spec import SignalSpec

    with stage("load_image (float32 copy)"):
        pixels = torch.from_numpy(load_image(path))
    height, width, channels = pixels.shape
    with stage("coordinate table (2 coords/pixel)"):
        coords, targets = pixel_centres(width, height), pixels.reshape(-1, channels)
    field = build_field("neurbf", SignalSpec("image", 2, channels, (width, height)), parse_budget(params))
    rbf = field.rbf_encodings()[0]
    print(f"{width}x{height}, {rbf.n_kernels} RBFs, {field.param_counts()}")
    with stage("whole-image Sobel"):
        image = pixels.numpy()
        weights = np.asarray(sum(sobel(image[:, :, c]) for c in range(channels)), np.float64).reshape(-1)
    centres = kmeans_stage(coords.double().numpy(), weights, rbf.n_kernels, "all pixels")
    del weights
    _place(rbf, centres, 1.0 / max(width, height))
    optimizer = make_adam(field.param_groups(), TrainConfig())

    def batch(step: int, generator: torch.Generator):
        index = torch.randint(width * height, (batch_size,), generator=generator)
        return coords[index], targets[index]

    with stage(f"{steps} steps of {batch_size} pixels") as row:
        parts = step_parts(field, optimizer, batch, steps)
        row["note"] = ", ".join(f"{k} {v:.2f} s" for k, v in parts.items()) + " per step"
    field.eval()
    rows = height // 16
    with stage("final metrics: reconstruct", "scaled from 1/16 of the rows") as row:
        started = time.perf_counter()
        part = reconstruct(field, width, rows).clamp(0, 1)
        row["seconds"] = 16 * (time.perf_counter() - started)
    prediction = torch.cat([part] * 16 + [part[: height - 16 * rows]])  # the full-size tensor reconstruct makes
    del part
    with stage("final metrics: PSNR + SSIM (whole image)"):
        psnr(prediction, pixels), ssim(prediction, pixels)


def _place(rbf, centres: np.ndarray, spacing: float) -> None:
    """Put k-means centres into the RBF encoding with isotropic pixel-sized shapes
    (the profile times the steps; the shapes do not change their cost)."""
    with torch.no_grad():
        rbf.centres.copy_(torch.from_numpy(centres).float())
        eye = torch.eye(2).expand(rbf.n_kernels, 2, 2) * (2 * spacing) ** 2
        rbf.shapes.copy_(rbf._shapes_from_covariance(eye).reshape(rbf.shapes.shape))


def run_raster(path: str, params: str, steps: int, batch_size: int) -> None:
    from rbfield.raster.grid import field_predictor
    from rbfield.raster.sampling import importance_sample, init_sample_size, random_batch
    from rbfield.raster.store import PixelStore
    from rbfield.raster.tiled_metrics import PixelSubset, tiled_metrics
    from rbfield.spec import SignalSpec

    with stage("PixelStore.open (uint8)"):
        store = PixelStore.open(path)
    spec = SignalSpec("image", 2, store.channels, (store.width, store.height))
    field = build_field("neurbf", spec, parse_budget(params))
    rbf = field.rbf_encodings()[0]
    count = init_sample_size(rbf.n_kernels)
    with stage(f"importance_sample ({count:,} points, 2 Sobel passes)"):
        points, weights, spacing = importance_sample(store, max_points=count)
    centres = kmeans_stage(points.double().numpy(), weights.double().numpy(), rbf.n_kernels, "bounded sample")
    _place(rbf, centres, spacing)
    optimizer = make_adam(field.param_groups(), TrainConfig())
    with stage(f"{steps} steps of {batch_size} pixels") as row:
        parts = step_parts(field, optimizer, lambda step, gen: random_batch(store, batch_size, gen), steps)
        row["note"] = ", ".join(f"{k} {v:.2f} s" for k, v in parts.items()) + " per step"
    field.eval()
    with stage("PixelSubset PSNR (2^16 pixels)"):
        PixelSubset(store).psnr(field)
    rows = store.height // 16
    band = PixelStore(store.array[:rows])
    with stage("tiled PSNR + SSIM incl. rendering", "scaled from 1/16 of the rows") as row:
        started = time.perf_counter()
        tiled_metrics(band, field_predictor(field, store.width, store.height))
        row["seconds"] = 16 * (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image")
    parser.add_argument("--params", default="1M")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=2**18)
    parser.add_argument("--stages", choices=["today", "raster"], default="today")
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    print(f"threads {torch.get_num_threads()}")
    (run_today if args.stages == "today" else run_raster)(args.image, args.params, args.steps, args.batch)
    print("\n| stage | seconds | peak RSS above start (MB) | note |\n| --- | ---: | ---: | --- |")
    for name, seconds, peak, note in ROWS:
        print(f"| {name} | {seconds:.2f} | {peak / 1e6:.0f} | {note} |")


if __name__ == "__main__":
    main()
