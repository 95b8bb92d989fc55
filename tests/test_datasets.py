"""Many fields at once: a dataset's fits equal single fits, failures stay isolated, runs resume, summaries."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from rbfield.cli import build_parser
from rbfield.datasets import compare_dataset, fit_dataset, worker_layout
from rbfield.datasets.progress import Progress, format_duration
from rbfield.datasets.runner import Outcome
from rbfield.ops import set_threads
from rbfield.runs import staging_path
from rbfield.signals.image import ImageSignal
from rbfield.tasks.image import fit_image
from rbfield.tasks.sdf import fit_sdf
from rbfield.train import TrainConfig
from shared_data import shared_file

#: A tiny image fit: a few steps of a small field on 48x48 crops.
IMAGE = {"params": "12k", "steps": 12, "seed": 3, "batch": 1024, "eval_every": 0, "checkpoint_every": 0}
#: A tiny SDF fit: a coarse mesh and few metric samples.
SDF = {**IMAGE, "params": "20k", "steps": 8, "batch": 1024}
SDF_OPTIONS = {"mesh_resolution": 32, "metric_samples": 1000}
#: Metrics that must be equal, not close, between a dataset's fit and a single fit.
IMAGE_METRICS = ("psnr", "ssim", "psnr_fp16", "trainable_params", "steps")
SDF_METRICS = ("iou", "iou_inside", "chamfer_l1", "nae_deg", "fscore", "trainable_params", "mesh_faces")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A folder of three real photos (scikit-image), 48x48 crops as PNG."""
    folder = tmp_path_factory.mktemp("photos")
    for name in ("astronaut", "coffee", "camera"):
        pixels = getattr(data, name)()
        Image.fromarray(np.ascontiguousarray(pixels[100:148, 200:248])).save(folder / f"{name}.png")
    return folder


@pytest.fixture(scope="module")
def local_set(photos, tmp_path_factory):
    """The photos fitted once on the local pool (2 workers x 1 thread); tests compare against it."""
    out = tmp_path_factory.mktemp("local")
    return fit_dataset(photos, out, "image", workers=2, threads=1, progress=None, **IMAGE)


@pytest.fixture
def one_thread():
    """This process's fits on one thread, as each dataset worker's; the count is restored afterwards."""
    before = torch.get_num_threads()
    set_threads(1)
    yield
    set_threads(before)


def single_image_fit(path, out, settings=IMAGE) -> dict:
    train = TrainConfig(
        steps=settings["steps"], seed=settings["seed"], eval_every=0, checkpoint_every=0, progress=False
    )
    signal = ImageSignal.from_path(path, batch_size=settings["batch"])
    return fit_image(signal, out, "neurbf", settings["params"], train, log=lambda _: None)


def test_image_dataset_equals_single_fits(photos, local_set, tmp_path, one_thread):
    assert local_set.failed == 0 and [o.name for o in local_set.outcomes] == ["astronaut", "camera", "coffee"]
    for outcome in local_set.outcomes:
        alone = single_image_fit(photos / f"{outcome.name}.png", tmp_path / "alone" / outcome.name)
        assert {k: outcome.report[k] for k in IMAGE_METRICS} == {k: alone[k] for k in IMAGE_METRICS}
        written = json.loads((local_set.out / outcome.name / "metrics.json").read_text())
        assert written["psnr"] == alone["psnr"]
        files = {p.name for p in (local_set.out / outcome.name).iterdir()}
        assert files == {p.name for p in (tmp_path / "alone" / outcome.name).iterdir()}


def test_sdf_dataset_equals_single_fits(tmp_path, one_thread):
    scans = [shared_file("meshes", "elephant.off"), shared_file("meshes", "kitten.xyz")]  # a mesh, a point cloud
    manifest = tmp_path / "scans.csv"
    manifest.write_text("path\n" + "\n".join(scans) + "\n")
    result = fit_dataset(manifest, tmp_path / "set", "sdf", workers=2, threads=1, progress=None, **SDF, **SDF_OPTIONS)
    assert result.failed == 0
    for outcome, scan in zip(result.outcomes, scans):
        train = TrainConfig(steps=SDF["steps"], seed=SDF["seed"], eval_every=0, checkpoint_every=0, progress=False)
        alone = fit_sdf(
            scan, tmp_path / "alone" / outcome.name, "neurbf", SDF["params"], train, batch=SDF["batch"],
            log=lambda _: None, **SDF_OPTIONS,
        )  # fmt: skip
        assert {k: outcome.report[k] for k in SDF_METRICS} == {k: alone[k] for k in SDF_METRICS}
        assert (tmp_path / "set" / outcome.name / "mesh.ply").exists()


def test_a_corrupt_input_is_isolated_and_counted(photos, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for name in ("astronaut", "coffee"):
        (folder / f"{name}.png").write_bytes((photos / f"{name}.png").read_bytes())
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    stream = io.StringIO()
    result = fit_dataset(folder, tmp_path / "out", "image", workers=2, threads=1, progress=stream, **IMAGE)
    assert result.failed == 1
    assert {o.name: o.status for o in result.outcomes} == {"astronaut": "done", "broken": "failed", "coffee": "done"}
    broken = next(o for o in result.outcomes if o.name == "broken")
    assert "broken.png" in broken.error and "\n" not in broken.error
    rows = list(csv.DictReader((tmp_path / "out" / "summary.csv").open()))
    assert [(r["name"], r["status"]) for r in rows] == [("astronaut", "done"), ("broken", "failed"), ("coffee", "done")]
    assert rows[1]["error"] == broken.error and rows[0]["psnr"] and not rows[1]["psnr"]
    assert "Traceback" in (tmp_path / "out" / "logs" / "broken.log").read_text()
    assert "failed broken: " in stream.getvalue() and "[3/3]" in stream.getvalue()
    assert (tmp_path / "out" / "summary.png").stat().st_size > 10_000


class InterruptedSignal(ImageSignal):
    """An image whose fit is interrupted (as by Ctrl-C) when it asks for the batch of step ``stop_at``."""

    stop_at = 6

    def batch(self, step, generator):
        if step == self.stop_at:
            raise KeyboardInterrupt
        return super().batch(step, generator)


def test_resume_skips_finished_and_finishes_interrupted_runs(photos, local_set, tmp_path, one_thread):
    out = tmp_path / "out"
    shutil.copytree(local_set.out, out)
    finished_at = (out / "astronaut" / "metrics.json").stat().st_mtime_ns
    # coffee: interrupted half-way, as a fit stopped by Ctrl-C leaves it (a checkpoint, no metrics)
    for path in (out / "coffee").iterdir():
        path.unlink()
    train = TrainConfig(steps=IMAGE["steps"], seed=IMAGE["seed"], eval_every=0, checkpoint_every=0, progress=False)
    signal = InterruptedSignal.from_path(photos / "coffee.png", batch_size=IMAGE["batch"])
    with pytest.raises(KeyboardInterrupt):
        fit_image(signal, out / "coffee", "neurbf", IMAGE["params"], train, log=lambda _: None)
    assert (staging_path(out / "coffee") / "checkpoint.pt").exists()
    assert not (out / "coffee" / "metrics.json").exists()

    again = fit_dataset(photos, out, "image", workers=2, threads=1, progress=None, **IMAGE)
    assert {o.name: o.status for o in again.outcomes} == {"astronaut": "skipped", "camera": "skipped", "coffee": "done"}
    assert (out / "astronaut" / "metrics.json").stat().st_mtime_ns == finished_at
    assert "resuming" in (out / "logs" / "coffee.log").read_text()
    before = {o.name: o.report for o in local_set.outcomes}
    for outcome in again.outcomes:  # the resumed run ends where an uninterrupted one did
        assert {k: outcome.report[k] for k in IMAGE_METRICS} == {k: before[outcome.name][k] for k in IMAGE_METRICS}
    assert len(list(csv.DictReader((out / "summary.csv").open()))) == 3


def test_compare_over_a_dataset_writes_each_fields_mean_and_spread(photos, tmp_path):
    result = compare_dataset(
        photos, tmp_path / "cmp", "image", ["neurbf", "instant-ngp"], workers=2, threads=1, progress=None, **IMAGE
    )
    assert result.failed == 0 and len(result.outcomes) == 6
    assert (tmp_path / "cmp" / "coffee" / "instant-ngp" / "metrics.json").exists()
    document = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    psnrs = [o.report["psnr"] for o in result.outcomes if o.field == "neurbf"]
    assert document["statistics"]["psnr"]["neurbf"]["mean"] == pytest.approx(np.mean(psnrs))
    assert document["statistics"]["psnr"]["neurbf"]["std"] == pytest.approx(np.std(psnrs, ddof=1))
    markdown = (tmp_path / "cmp" / "compare.md").read_text()
    assert "| neurbf | 3 | 0 |" in markdown and "| coffee |" in markdown and "+-" in markdown


def test_ray_runs_equal_the_local_pool(photos, local_set, tmp_path):
    ray = pytest.importorskip("ray", reason="the Ray backend is optional: pip install -e .[ray]")
    local = local_set
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = fit_dataset(photos, tmp_path / "ray", "image", threads=1, backend="ray", progress=None, **IMAGE)
    finally:
        ray.shutdown()
    assert remote.failed == 0
    for a, b in zip(local.outcomes, remote.outcomes):
        assert (a.name, a.status) == (b.name, b.status)
        assert {k: a.report[k] for k in IMAGE_METRICS} == {k: b.report[k] for k in IMAGE_METRICS}
        assert b.report["threads"] == 1
    assert {p.name for p in (tmp_path / "ray" / "camera").iterdir()} == {
        p.name for p in (local.out / "camera").iterdir()
    }


def test_a_missing_ray_says_how_to_install_it(photos, tmp_path, monkeypatch):
    import sys

    from rbfield.errors import RbfieldError

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(RbfieldError, match=r"pip install -e \.\[ray\]"):
        fit_dataset(photos, tmp_path / "out", "image", backend="ray", progress=None, **IMAGE)


def test_worker_layout_fills_the_cores():
    assert worker_layout(10, None, None, cores=4) == (4, 1)
    assert worker_layout(1, None, None, cores=4) == (1, 4)
    assert worker_layout(10, None, 2, cores=4) == (2, 2)
    assert worker_layout(10, 3, None, cores=6) == (3, 2)
    assert worker_layout(10, 2, 1, cores=8) == (2, 1)


def test_progress_reports_each_finished_input_and_the_time_left():
    now = [0.0]
    stream = io.StringIO()
    progress = Progress(4, 2, stream=stream, clock=lambda: now[0])
    now[0] = 30.0
    progress.update(Outcome("a", "a", "neurbf", "a.png", "done", seconds=30.0))
    progress.update(Outcome("b", "b", "neurbf", "b.png", "skipped"))
    now[0] = 60.0
    progress.update(Outcome("c", "c", "neurbf", "c.png", "failed", error="c.png: not an image", seconds=3.0))
    assert progress.line() == "3/4 finished (1 failed, 1 skipped), 1 running, 30s left"
    lines = stream.getvalue().splitlines()
    assert lines[0] == "[1/4] done a in 30s; 1m 30s left"
    assert lines[2] == "[3/4] failed c: c.png: not an image; 30s left"
    assert format_duration(3725) == "1h 02m"


def test_set_threads_sets_torch_and_numba_together():
    numba = pytest.importorskip("numba")
    before = torch.get_num_threads()
    try:
        set_threads(1)
        assert (torch.get_num_threads(), numba.get_num_threads()) == (1, 1)
    finally:
        set_threads(before)
    with pytest.raises(ValueError, match="at least 1"):
        set_threads(0)


def test_the_fit_command_on_a_folder_reports_failures_in_its_exit_status(photos, tmp_path, capsys):
    from rbfield.datasets.command import run_dataset_command

    folder = tmp_path / "mixed"
    shutil.copytree(photos, folder)
    (folder / "empty.png").write_bytes(b"")
    flags = ["--params", "12k", "--steps", "5", "--batch", "1024", "--eval-every", "0", "--workers", "2"]
    args = build_parser().parse_args(
        ["fit", "image", str(folder), "--out", str(tmp_path / "out"), "--threads", "1", "--quiet", *flags]
    )
    assert run_dataset_command(args, "image") == 1
    printed = capsys.readouterr()
    assert "3 fitted, 0 complete before, 1 failed; results in" in printed.out and printed.err == ""
    rows = {row["name"]: row for row in csv.DictReader((tmp_path / "out" / "summary.csv").open())}
    assert rows["empty"]["status"] == "failed" and rows["coffee"]["steps"] == "5"


@pytest.mark.parametrize(
    ("environment", "expected"),
    [({}, "1000"), ({"GOMP_SPINCOUNT": "5"}, "5"), ({"OMP_WAIT_POLICY": "PASSIVE"}, None)],
    ids=["default", "user-spin", "user-policy"],
)
def test_idle_openmp_threads_spin_briefly_unless_the_user_chose(environment, expected):
    import subprocess
    import sys

    clean = {key: value for key, value in os.environ.items() if key not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    code = "import os, rbfield, torch; print(os.environ.get('GOMP_SPINCOUNT'))"
    done = subprocess.run([sys.executable, "-c", code], env={**clean, **environment}, capture_output=True, text=True)
    assert done.stdout.strip() == str(expected)
