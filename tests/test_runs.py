"""Run folders as transactions, one writer at a time; provenance; devices; checkpoints on a clock;
progress lines off a terminal."""

from __future__ import annotations

import fcntl
import hashlib
import sys

import numpy as np
import pytest
import torch

from rbfield.errors import RbfieldError
from rbfield.runs import RunFolder, check_output_folder, provenance, sha256_of, staging_path
from rbfield.tasks.common import report_interrupt
from rbfield.train import TrainConfig, fit, progress_line


def _finished_run(folder, text="old"):
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(text)
    (folder / "checkpoint.pt").write_bytes(b"old checkpoint")
    return folder


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_complete_run_replaces_the_old_one_only_at_the_end(tmp_path):
    out = _finished_run(tmp_path / "run")
    with RunFolder(out, overwrite=True).writing() as staging:
        assert staging == staging_path(out) and staging.parent == out.parent
        (staging / "metrics.json").write_text("new")
        assert (out / "metrics.json").read_text() == "old"  # untouched until complete
    assert (out / "metrics.json").read_text() == "new" and not (out / "checkpoint.pt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".run.lock", "run"]


def test_a_failed_run_leaves_the_old_one_and_no_staging(tmp_path):
    out = _finished_run(tmp_path / "run")
    before = _snapshot(out)
    with pytest.raises(OSError):
        with RunFolder(out, overwrite=True).writing() as staging:
            (staging / "mesh.ply").write_text("half")
            raise OSError(28, "No space left on device")
    assert _snapshot(out) == before and not staging_path(out).exists()


def test_an_interrupted_run_keeps_its_checkpoint_in_staging_for_resume(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        with RunFolder(out).writing() as staging:
            (staging / "checkpoint.pt").write_bytes(b"step 7")
            raise KeyboardInterrupt
    assert not out.exists() and (staging_path(out) / "checkpoint.pt").read_bytes() == b"step 7"
    with pytest.raises(RbfieldError, match="--resume.*--overwrite"):
        RunFolder(out).check()
    assert RunFolder(out, resume=True).resume_checkpoint() == staging_path(out) / "checkpoint.pt"


def test_resuming_a_finished_run_starts_from_a_copy_of_its_checkpoint(tmp_path):
    out = _finished_run(tmp_path / "run")
    with pytest.raises(RuntimeError):
        with RunFolder(out, resume=True).writing() as staging:
            assert (staging / "checkpoint.pt").read_bytes() == b"old checkpoint"
            raise RuntimeError("failed before training")
    assert not staging_path(out).exists()  # the untouched copy is not worth keeping
    assert (out / "checkpoint.pt").read_bytes() == b"old checkpoint"


@pytest.mark.parametrize(
    "resume, overwrite, message",
    [
        (False, False, "finished run; add --overwrite to replace it, --resume to continue it"),
        (True, True, "give one of them"),
    ],
)
def test_a_finished_run_is_refused(tmp_path, resume, overwrite, message):
    out = _finished_run(tmp_path / "run")
    with pytest.raises(RbfieldError, match=message):
        RunFolder(out, resume=resume, overwrite=overwrite).check()


def test_out_naming_a_file_or_a_read_only_place_is_refused(tmp_path, read_only_dir):
    (tmp_path / "file").write_text("x")
    with pytest.raises(RbfieldError, match="is a file"):
        RunFolder(tmp_path / "file").check()
    with pytest.raises(RbfieldError, match="is a file, not a folder"):
        RunFolder(tmp_path / "file" / "run").check()
    with pytest.raises(RbfieldError, match="not writable"):
        RunFolder(read_only_dir / "run").check()
    with pytest.raises(RbfieldError, match="not writable"):
        check_output_folder(read_only_dir / "renders")


def test_a_second_writer_is_refused_while_the_first_holds_the_lock(tmp_path):
    out = tmp_path / "run"
    with RunFolder(out).writing():
        with pytest.raises(RbfieldError, match="another rbfield process is writing"):
            with RunFolder(out, overwrite=True).writing():
                pass
    with open(tmp_path / ".run.lock") as handle:  # released on exit
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_a_swap_cut_short_is_finished_by_the_next_writer(tmp_path):
    out = tmp_path / "run"
    replaced = tmp_path / ".run.replaced"
    _finished_run(replaced, "old")  # crash after the old run went aside ...
    _finished_run(staging_path(out), "new")  # ... and before the new one went in
    RunFolder(out, resume=True).recover()
    assert (out / "metrics.json").read_text() == "new" and not replaced.exists()


def test_an_incomplete_swap_brings_the_old_run_back(tmp_path):
    out = tmp_path / "run"
    _finished_run(tmp_path / ".run.replaced", "old")
    RunFolder(out).recover()
    assert (out / "metrics.json").read_text() == "old"


def test_report_interrupt_points_at_the_staging_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    staging_path(out).mkdir()
    (staging_path(out) / "checkpoint.pt").write_bytes(b"x")
    report_interrupt(out)
    assert f"{staging_path(out)}/checkpoint.pt" in capsys.readouterr().err


def test_provenance_records_version_command_device_threads_and_hashes(tmp_path):
    from rbfield import __version__

    (tmp_path / "shape.off").write_bytes(b"OFF\n")
    scene = tmp_path / "scene"
    scene.mkdir()
    (scene / "a.json").write_text("{}")
    record = provenance([tmp_path / "shape.off", scene], torch.device("cpu"))
    assert record["rbfield_version"] == __version__ and record["command"] == sys.argv
    assert record["device"] == "cpu" and record["threads"] == torch.get_num_threads()
    assert record["input_sha256"][str(tmp_path / "shape.off")] == hashlib.sha256(b"OFF\n").hexdigest()
    before = sha256_of(scene)
    (scene / "a.json").write_text("{ }")
    assert sha256_of(scene) != before


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"time_budget": float("inf")}, "finite"),
        ({"time_budget": float("nan")}, "finite"),
        ({"steps": 0}, "at least 1"),
        ({"checkpoint_seconds": float("inf")}, "checkpoint_seconds"),
    ],
)
def test_train_config_refuses_budgets_that_never_end(settings, message):
    with pytest.raises(RbfieldError, match=message):
        TrainConfig(**{"steps": 10, **settings})


def _tiny_image_fit(tmp_path, **settings):
    from rbfield import ImageSignal, build_field

    pixels = np.linspace(0, 1, 16 * 16, dtype=np.float32).reshape(16, 16, 1)
    signal = ImageSignal(pixels, name="ramp")
    field = build_field("instant-ngp", signal.spec(), "10k")
    field.initialize(signal)
    return fit(field, signal, TrainConfig(**settings), run_dir=tmp_path)


def test_checkpoints_also_follow_the_clock(tmp_path, monkeypatch):
    saved = []
    monkeypatch.setattr("rbfield.train._save_checkpoint", lambda path, f, o, step, *rest: saved.append(step))
    _tiny_image_fit(tmp_path, steps=6, eval_every=0, checkpoint_every=0, checkpoint_seconds=1e-9, progress=False)
    assert saved == [1, 2, 3, 4, 5, 6, 6]  # every step, then the final save
    saved.clear()
    _tiny_image_fit(tmp_path, steps=6, eval_every=0, checkpoint_every=0, checkpoint_seconds=0, progress=False)
    assert saved == [6]


def test_progress_off_a_terminal_is_one_line_per_evaluation(tmp_path, capsys):
    _tiny_image_fit(tmp_path, steps=6, eval_every=3, progress=True)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("step 3/6, ") and "psnr" in lines[0], err
    assert "\r" not in err


def test_progress_line_format():
    assert progress_line({"step": 250, "seconds": 12.34, "psnr": 31.2, "flag": True}, 2000) == (
        "step 250/2000, 12.3 s: psnr 31.2"
    )
