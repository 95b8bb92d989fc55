"""Where the benchmarks find real data: ``../shared/data`` beside the repository (its README says what is there)."""

from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MESHES = SHARED_DATA / "meshes"
PHOTOS = SHARED_DATA / "images"
SCENES = SHARED_DATA / "nerf"
