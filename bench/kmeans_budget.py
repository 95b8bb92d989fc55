"""How much sample and how many Lloyd iterations RBF placement needs on a large photo.

Places N kernels by weighted k-means on an importance sample of the photo's
Sobel magnitude (the image signal's placement), for several (points per kernel,
Lloyd iterations) pairs, and scores each by the weighted k-means objective over
every pixel (weight x squared distance to the nearest centre, in pixels^2), with
the time it took:

    python bench/kmeans_budget.py ../shared/data/images/twowings-2560x1600.jpg --kernels 20000

Prints a Markdown table: points per kernel, iterations, seconds, objective, and
the objective relative to the first row.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.spatial import cKDTree

from rbfield.encodings.rbf_init import weighted_kmeans
from rbfield.raster.sampling import importance_sample, sobel_region
from rbfield.raster.store import PixelStore


def objective(store: PixelStore, centres: np.ndarray) -> float:
    """Sobel-weighted mean squared distance (pixels^2) of every pixel to its nearest centre."""
    height, width = store.height, store.width
    magnitude = sobel_region(store, 0, 0, width, height).reshape(-1).astype(np.float64)
    rows, columns = np.divmod(np.arange(height * width), width)
    pixels = np.stack([(columns + 0.5) / width, (rows + 0.5) / height], 1)
    distance, _ = cKDTree(centres).query(pixels, k=1, workers=-1)
    return float((magnitude * (distance * max(width, height)) ** 2).sum() / magnitude.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image")
    parser.add_argument("--kernels", type=int, default=20000)
    parser.add_argument(
        "--pairs", default="64x10,32x10,16x10,32x4,16x4,16x3,8x3", help="points-per-kernel x iterations"
    )
    args = parser.parse_args()
    store = PixelStore.open(args.image)
    rows = [
        "| points per kernel | iterations | seconds | objective (px^2) | relative |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    first = None
    for pair in args.pairs.split(","):
        per_kernel, iterations = (int(part) for part in pair.split("x"))
        started = time.perf_counter()
        points, weights, _ = importance_sample(store, per_kernel * args.kernels, seed=0)
        centres, _ = weighted_kmeans(
            points.numpy().astype(np.float64),
            weights.numpy().astype(np.float64),
            args.kernels,
            n_iterations=iterations,
            seed=0,
        )
        seconds = time.perf_counter() - started
        value = objective(store, centres)
        first = first or value
        rows.append(f"| {per_kernel} | {iterations} | {seconds:.1f} | {value:.3f} | {value / first:.3f} |")
        print(rows[-1], flush=True)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
