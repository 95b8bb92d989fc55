"""Radiance fields side by side on the Blender-format scenes in ../shared/data/nerf.

For each (scene, field): ``rbfield fit nerf`` at one budget and time budget,
then a density mesh at a few iso-levels scored against the source scan
(mapped into scene coordinates by the scene's normalization.json).
``--mesh-ablation`` also scores the mesh without the hidden-inside fill and
without dropping small pieces (``raw``: the export before either existed) and
with the fill only (``filled``).

Chamfer L1 convention here: 0.5 * (mean_a min_b |a - b| + mean_b min_a |a - b|),
unsquared Euclidean distances in scene units, over 200k area-weighted surface
samples of each mesh.

Run one heavy process at a time, e.g.:

    python bench/nerf_scenes.py --scenes bunny_coffee --fields neurbf,instant-ngp \
        --params 1M --time 900 --threads 2 --out runs/bench-nerf

Prints a markdown table (and writes it to OUT/nerf_table.md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from data_paths import MESHES, SCENES
from rbfield.geometry.triangles import face_areas


def read_off(path: Path) -> tuple[np.ndarray, np.ndarray]:
    tokens = path.read_text().split()
    n_vertices, n_faces = int(tokens[1]), int(tokens[2])
    vertices = np.asarray(tokens[4 : 4 + 3 * n_vertices], dtype=np.float64).reshape(-1, 3)
    faces = np.asarray(tokens[4 + 3 * n_vertices :], dtype=np.int64).reshape(n_faces, 4)[:, 1:]
    return vertices, faces


def read_ply(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and faces of a binary PLY written by rbfield (xyz float + rgb uchar, triangle lists)."""
    data = path.read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    header = data[:end].decode()
    n_vertices = int(header.split("element vertex ")[1].split()[0])
    n_faces = int(header.split("element face ")[1].split()[0])
    vertex_type = np.dtype([("p", "<f4", 3), ("c", "u1", 3)])
    face_type = np.dtype([("n", "u1"), ("i", "<i4", 3)])
    vertices = np.frombuffer(data, vertex_type, n_vertices, end)["p"].astype(np.float64)
    faces = np.frombuffer(data, face_type, n_faces, end + n_vertices * vertex_type.itemsize)["i"].astype(np.int64)
    return vertices, faces


def sample_surface(vertices: np.ndarray, faces: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a, b, c = (vertices[faces[:, i]] for i in range(3))
    areas = face_areas(vertices, faces)
    chosen = rng.choice(len(faces), size=count, p=areas / areas.sum())
    r1, r2 = rng.random((2, count))
    s = np.sqrt(r1)
    return (1 - s)[:, None] * a[chosen] + (s * (1 - r2))[:, None] * b[chosen] + (s * r2)[:, None] * c[chosen]


def chamfer_l1(points_a: np.ndarray, points_b: np.ndarray) -> float:
    a_to_b, _ = cKDTree(points_b).query(points_a, workers=1)
    b_to_a, _ = cKDTree(points_a).query(points_b, workers=1)
    return 0.5 * (a_to_b.mean() + b_to_a.mean())


def reference_points(scene: Path, count: int = 200_000) -> np.ndarray:
    normalization = json.loads((scene / "normalization.json").read_text())
    matrix = np.asarray(normalization["source_to_scene"])
    vertices, faces = read_off(MESHES / normalization["source_mesh"])
    vertices = vertices @ matrix[:3, :3].T + matrix[:3, 3]
    return sample_surface(vertices, faces, count)


#: Mesh settings scored by --mesh-ablation: (fill hidden inside, share of the largest piece kept).
MESH_VARIANTS = {"raw": (False, 0.0), "filled": (True, 0.0), "default": (True, None)}


def mesh_scores(run: Path, scene: Path, levels: list[float], resolution: int, variant: str = "default") -> dict:
    """Chamfer L1 to the scan of the run's mesh at each level ({level: value, or the error text})."""
    from rbfield.errors import RbfieldError
    from rbfield.geometry.mesh_pieces import MIN_PIECE_SHARE
    from rbfield.tasks.nerf import export_scene_mesh

    fill, share = MESH_VARIANTS[variant]
    reference = reference_points(scene)
    scores = {}
    for level in levels:
        path = run / f"mesh_{variant}_level{level:g}.ply"
        try:
            export_scene_mesh(run, resolution, path, level, fill, MIN_PIECE_SHARE if share is None else share)
        except RbfieldError as error:
            scores[level] = str(error)
            continue
        vertices, faces = read_ply(path)
        scores[level] = chamfer_l1(sample_surface(vertices, faces, 200_000, seed=1), reference)
    return scores


def main() -> None:
    import torch

    from rbfield.tasks.nerf import fit_scene
    from rbfield.train import TrainConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", default="bunny_coffee")
    parser.add_argument("--fields", default="neurbf,instant-ngp")
    parser.add_argument("--params", default="1M")
    parser.add_argument("--time", type=float, default=840.0, help="training seconds per run")
    parser.add_argument("--levels", default="5,10,25", help="density iso-levels for the mesh")
    parser.add_argument("--mesh-res", type=int, default=256)
    parser.add_argument("--out", default="runs/bench-nerf")
    parser.add_argument("--score-only", action="store_true", help="reuse finished runs; only mesh scores and the table")
    parser.add_argument("--mesh-ablation", action="store_true", help="also score the raw and the fill-only meshes")
    parser.add_argument("--threads", type=int, default=2, help="torch (and Numba) threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = [
        "| scene | field | test PSNR | SSIM | trainable | total | steps | train s | depth MAE | Chamfer L1 by level |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for scene_name in args.scenes.split(","):
        scene = SCENES / scene_name
        for field in args.fields.split(","):
            run = Path(args.out) / f"{scene_name}-{field}"
            if args.score_only:
                report = json.loads((run / "metrics.json").read_text())
            else:
                report = fit_scene(
                    scene,
                    run,
                    field,
                    args.params,
                    TrainConfig(steps=None, time_budget=args.time, eval_every=500, progress=False),
                )
            levels = [float(x) for x in args.levels.split(",")]
            variants = list(MESH_VARIANTS) if args.mesh_ablation else ["default"]
            scores = {variant: mesh_scores(run, scene, levels, args.mesh_res, variant) for variant in variants}
            (run / "mesh_scores.json").write_text(
                json.dumps(
                    {variant: {str(k): v for k, v in by_level.items()} for variant, by_level in scores.items()},
                    indent=2,
                )
            )
            chamfer = "; ".join(
                (f"{variant} " if args.mesh_ablation else "")
                + ", ".join(f"{k:g}: {v:.4f}" if isinstance(v, float) else f"{k:g}: none" for k, v in by_level.items())
                for variant, by_level in scores.items()
            )
            depth = f"{report['depth_mae']:.4f}" if report.get("depth_mae") is not None else "-"
            rows.append(
                f"| {scene_name} | {field} | {report['psnr']:.2f} | "
                f"{report['ssim']:.4f} | {report['trainable_params']:,} | "
                f"{report['total_params']:,} | {report['steps']} | {report['seconds']:.0f} | {depth} | {chamfer} |"
            )
            print(rows[-1], flush=True)
    table = "\n".join(rows) + "\n"
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "nerf_table.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
