"""The crop benchmark's command runs end to end on tiny settings (bench/image_crops.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def test_two_crops_of_one_photo_and_a_sampled_mlp_in_one_run(tmp_path):
    """Two crops of scikit-image's camera in one run, neurbf at every pixel and siren on 64 random pixels
    a step: the second crop is cut from the photo as loaded once, and each field's fit is kept."""
    out = tmp_path / "crops"
    command = [
        sys.executable,
        str(BENCH / "image_crops.py"),
        "--crops",
        "camera@0.25,0.25;camera@0.5,0.5",
        "--fields",
        "neurbf,siren",
        "--params",
        "8k",
        "--steps",
        "3",
        "--size",
        "32",
        "--mlp-pixels",
        "64",
        "--threads",
        "1",
        "--work",
        str(tmp_path / "work"),
        "--out",
        str(out),
    ]
    finished = subprocess.run(command, cwd=BENCH.parent, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    rows = json.loads(out.with_suffix(".json").read_text())["rows"]
    assert [row["crop"] for row in rows] == ["camera@0.25,0.25", "camera@0.5,0.5"]
    assert all(set(row["fits"]) == {"neurbf", "siren"} for row in rows)
    # Different parts of the photo: the two crops differ in content.
    assert rows[0]["gradient"] != rows[1]["gradient"]
    kept = sorted(path.name for path in (tmp_path / "work").iterdir())
    assert len(kept) == 4
    assert sum("-px64-" in name for name in kept) == 2
