"""A dataset's inputs: folders, globs and manifests become jobs; every mistake gets a one-line error."""

from __future__ import annotations

import pytest

from rbfield.datasets import is_dataset, load_jobs
from rbfield.datasets.command import dataset_name
from rbfield.errors import RbfieldError

DEFAULTS = {"field": "neurbf", "params": "128k", "steps": 2000, "time": None, "seed": 0, "batch": 4096}


@pytest.fixture
def folder(tmp_path):
    """Three empty "images" and a stray text file (load_jobs only looks at names)."""
    for name in ("b.png", "a.jpg", "c.tif", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    return tmp_path


def test_a_folder_gives_its_inputs_in_name_order(folder):
    jobs = load_jobs(folder, "image", DEFAULTS)
    assert [(j.name, j.path.name) for j in jobs] == [("a", "a.jpg"), ("b", "b.png"), ("c", "c.tif")]
    assert all(j.settings == DEFAULTS and j.task == "image" for j in jobs)


def test_a_glob_and_a_comparison(folder):
    jobs = load_jobs(str(folder / "*.p*"), "image", DEFAULTS, fields=["neurbf", "siren"])
    assert [(j.name, j.input_name, j.settings["field"]) for j in jobs] == [
        ("b/neurbf", "b", "neurbf"),
        ("b/siren", "b", "siren"),
    ]


def test_manifest_rows_override_the_dataset_settings(folder):
    manifest = folder / "set.csv"
    manifest.write_text("path,steps,params,seed,name\na.jpg,50,,7,first\n" + f"{folder / 'b.png'},,20k,,\n")
    first, second = load_jobs(manifest, "image", DEFAULTS)
    assert (first.name, first.settings["steps"], first.settings["params"], first.settings["seed"]) == (
        "first",
        50,
        "128k",
        7,
    )
    assert (second.name, second.settings["steps"], second.settings["params"]) == ("b", 2000, "20k")


def test_a_json_lines_manifest_with_a_time_budget(folder):
    manifest = folder / "set.jsonl"
    manifest.write_text('{"path": "a.jpg", "time": 30}\n\n{"path": "c.tif", "field": "siren"}\n')
    first, second = load_jobs(manifest, "image", DEFAULTS)
    assert (first.settings["time"], first.settings["steps"]) == (30.0, None)
    assert second.settings["field"] == "siren" and second.settings["steps"] == 2000


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("m.csv", "file,steps\na.jpg,3\n", r"m\.csv: the header has no 'path' column \(found: file, steps\)"),
        ("m.csv", "path\nmissing.png\n", r"m\.csv, line 2: .*missing\.png: no such file"),
        ("m.csv", "path,lr\na.jpg,0.1\n", r"m\.csv, line 2: unknown setting\(s\) lr; a manifest may give path, field"),
        ("m.csv", "path,steps\na.jpg,many\n", r"m\.csv, line 2: steps must be an integer, got 'many'"),
        ("m.csv", "path\na.jpg,extra\n", r"m\.csv, line 2: more cells than header columns"),
        ("m.jsonl", '{"path": "a.jpg", "steps": 2.5}\n', r"m\.jsonl, line 1: steps must be an integer, got 2\.5"),
        ("m.jsonl", '["a.jpg"]\n', r"m\.jsonl, line 1: not a JSON object"),
        ("m.jsonl", '{"steps": 3}\n', r"m\.jsonl, line 1: no 'path' given"),
        ("m.csv", "path\n", r"m\.csv: no inputs"),
        (
            "m.csv",
            "path\na.jpg\nsub/a.png\n",
            r"a\.jpg and .*sub/a\.png would share the run folder 'a'; .*'name' column",
        ),
    ],
)
def test_manifest_mistakes_have_clear_messages(folder, name, text, message):
    (folder / "sub").mkdir()
    (folder / "sub" / "a.png").write_bytes(b"")
    (folder / name).write_text(text)
    with pytest.raises(RbfieldError, match=message) as caught:
        load_jobs(folder / name, "image", DEFAULTS)
    assert "\n" not in str(caught.value)


def test_folder_mistakes_have_clear_messages(tmp_path, folder):
    with pytest.raises(RbfieldError, match=r"no inputs \(sdf inputs are .*\.off"):
        load_jobs(folder, "sdf", DEFAULTS)
    (folder / "a.png").write_bytes(b"")
    with pytest.raises(RbfieldError, match=r"a\.jpg and .*a\.png would share the run folder 'a'"):
        load_jobs(folder, "image", DEFAULTS)
    with pytest.raises(RbfieldError, match=r"nowhere\.csv: no such manifest file"):
        load_jobs(tmp_path / "nowhere.csv", "image", DEFAULTS)
    with pytest.raises(RbfieldError, match=r"no inputs"):
        load_jobs(str(tmp_path / "*.nothing"), "image", DEFAULTS)
    manifest = folder / "m.csv"
    manifest.write_text("path,field\na.jpg,siren\n")
    with pytest.raises(RbfieldError, match=r"line 2: a comparison fits every field it is given"):
        load_jobs(manifest, "image", DEFAULTS, fields=["neurbf"])


def test_what_counts_as_a_dataset(folder):
    assert is_dataset(folder) and is_dataset(str(folder / "*.png")) and is_dataset("set.csv")
    assert not is_dataset(folder / "a.jpg")
    assert dataset_name(str(folder) + "/") == folder.name
    assert dataset_name("scans/**/*.off") == "scans" and dataset_name("*.off") == "dataset"
    assert dataset_name("lists/bench.jsonl") == "bench"
