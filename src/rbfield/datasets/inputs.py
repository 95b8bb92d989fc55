"""A dataset's inputs: a folder, a glob or a manifest file, turned into one job per (input, field).

A manifest is a CSV file (a header row) or JSON lines (``.jsonl``/``.ndjson``: one object per line) with a
``path`` column and optional per-input settings that override the dataset's own (:data:`SETTINGS`). Relative
paths are relative to the manifest's folder. Each input's run folder is named after the file's stem, or after
its ``name`` setting where two inputs would share one.
"""

from __future__ import annotations

import csv
import glob
import json
from dataclasses import dataclass, field
from pathlib import Path

from rbfield.errors import RbfieldError
from rbfield.geometry.shapes_io import MESH_EXTENSIONS, POINT_EXTENSIONS

#: The files each task reads (by extension, lower case).
EXTENSIONS = {
    "sdf": tuple(sorted(set(MESH_EXTENSIONS + POINT_EXTENSIONS))),
    "image": (".png", ".jpg", ".jpeg", ".tif", ".tiff"),
}
MANIFEST_EXTENSIONS = (".csv", ".jsonl", ".ndjson")
GLOB_CHARACTERS = "*?["

#: Settings a manifest row may give, with their types: the field preset, the trainable-parameter budget ("200k"),
#: training steps, training seconds, the seed, samples per step, and the run folder's name.
SETTINGS = {"field": str, "params": str, "steps": int, "time": float, "seed": int, "batch": int, "name": str}


@dataclass(frozen=True)
class Job:
    """One fit of a dataset.

    Attributes:
        name: the run folder's name under the dataset's output folder (``<input>`` or ``<input>/<field>``).
        input_name: the input's name (its file stem or manifest ``name``), shared by its fields' jobs.
        path: the input file.
        task: "sdf" or "image".
        settings: field, params, steps, time, seed, batch and the task's own options (e.g. ``mesh_resolution``),
            all resolved: the dataset's values overridden by the input's manifest row.
    """

    name: str
    input_name: str
    path: Path
    task: str
    settings: dict = field(default_factory=dict)


def is_dataset(source: str | Path) -> bool:
    """Whether ``source`` names many inputs (a folder, a glob pattern or a manifest file), not one input."""
    text = str(source)
    return Path(text).is_dir() or any(c in text for c in GLOB_CHARACTERS) or Path(text).suffix in MANIFEST_EXTENSIONS


def _folder_files(folder: Path, task: str) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS[task])


def _glob_files(pattern: str, task: str) -> list[Path]:
    matches = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
    return [p for p in matches if p.is_file() and p.suffix.lower() in EXTENSIONS[task]]


def _manifest_rows(manifest: Path) -> list[tuple[int, dict]]:
    """(line number, row) pairs of a CSV or JSON-lines manifest; empty cells are left out."""
    if not manifest.is_file():
        raise RbfieldError(f"{manifest}: no such manifest file")
    text = manifest.read_text()
    if manifest.suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        if reader.fieldnames is None or "path" not in [n.strip() for n in reader.fieldnames]:
            raise RbfieldError(
                f"{manifest}: the header has no 'path' column (found: {', '.join(reader.fieldnames or [])})"
            )
        rows = []
        for number, row in enumerate(reader, start=2):
            if None in row:
                raise RbfieldError(f"{manifest}, line {number}: more cells than header columns")
            rows.append((number, {k.strip(): v.strip() for k, v in row.items() if v is not None and v.strip()}))
        return rows
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise RbfieldError(f"{manifest}, line {number}: not a JSON object ({error.msg})") from None
        if not isinstance(row, dict):
            raise RbfieldError(f"{manifest}, line {number}: not a JSON object")
        rows.append((number, {k: v for k, v in row.items() if v is not None and v != ""}))
    return rows


def _row_settings(row: dict, where: str) -> tuple[str, dict]:
    """A manifest row's path and typed settings; clear errors for a missing path, unknown or bad settings."""
    if "path" not in row:
        raise RbfieldError(f"{where}: no 'path' given")
    unknown = sorted(set(row) - set(SETTINGS) - {"path"})
    if unknown:
        raise RbfieldError(
            f"{where}: unknown setting(s) {', '.join(unknown)}; a manifest may give path, {', '.join(SETTINGS)}"
        )
    settings = {}
    for key, value in row.items():
        if key == "path":
            continue
        kind = SETTINGS[key]
        try:
            if kind is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            settings[key] = kind(value)
        except (TypeError, ValueError):
            raise RbfieldError(f"{where}: {key} must be {'an integer' if kind is int else 'a number'}, got {value!r}")
    return str(row["path"]), settings


def _check_names(names: list[str], paths: list[Path], source: str) -> None:
    """Run folder names must be usable and distinct."""
    seen: dict[str, Path] = {}
    for name, path in zip(names, paths):
        if not name or name in (".", "..") or "/" in name or "\\" in name:
            raise RbfieldError(f"{source}: {name!r} ({path}) cannot name a run folder")
        if name in seen:
            raise RbfieldError(
                f"{source}: {seen[name]} and {path} would share the run folder {name!r}; "
                "list them in a manifest with a 'name' column to tell them apart"
            )
        seen[name] = path


def load_jobs(source: str | Path, task: str, defaults: dict, fields: list[str] | None = None) -> list[Job]:
    """The jobs of a dataset, in input order.

    Args:
        source: a folder (its files of the task's extensions, not recursing), a glob pattern (``**`` recurses) or
            a manifest (``.csv``, ``.jsonl``, ``.ndjson``).
        task: "sdf" or "image".
        defaults: the dataset's settings (``field``, ``params``, ``steps``, ``time``, ``seed``, ``batch`` and the
            task's options); a manifest row overrides the keys of :data:`SETTINGS` it gives.
        fields: for a comparison, every field to fit to each input; the run folders are then ``<input>/<field>``
            and a manifest may not choose a field.

    Raises:
        RbfieldError: with one line saying what is wrong (no inputs, a missing file or column, an unknown or bad
            setting, two inputs with one name).
    """
    if task not in EXTENSIONS:
        raise RbfieldError(f"unknown task {task!r}; choose from: {', '.join(EXTENSIONS)}")
    text = str(source)
    path = Path(text)
    rows: list[tuple[Path, dict]] = []
    if path.suffix in MANIFEST_EXTENSIONS and not any(c in text for c in GLOB_CHARACTERS):
        for number, row in _manifest_rows(path):
            where = f"{path}, line {number}"
            file, settings = _row_settings(row, where)
            file_path = Path(file) if Path(file).is_absolute() else path.parent / file
            if not file_path.is_file():
                raise RbfieldError(f"{where}: {file_path}: no such file")
            if fields is not None and "field" in settings:
                raise RbfieldError(f"{where}: a comparison fits every field it is given; remove the field setting")
            rows.append((file_path, settings))
    elif path.is_dir():
        rows = [(p, {}) for p in _folder_files(path, task)]
    elif any(c in text for c in GLOB_CHARACTERS):
        rows = [(p, {}) for p in _glob_files(text, task)]
    else:
        raise RbfieldError(f"{source}: no such folder or manifest")
    if not rows:
        what = "is a folder with no inputs" if path.is_dir() else "no inputs"
        raise RbfieldError(f"{source}: {what} ({task} inputs are {', '.join(EXTENSIONS[task])} files)")
    names = [settings.get("name", file.stem) for file, settings in rows]
    _check_names(names, [file for file, _ in rows], text)
    jobs = []
    for name, (file, settings) in zip(names, rows):
        resolved = {**defaults, **{k: v for k, v in settings.items() if k != "name"}}
        if "steps" in settings and "time" not in settings:
            resolved["time"] = None
        if "time" in settings and "steps" not in settings:
            resolved["steps"] = None
        for field_name in fields or [resolved["field"]]:
            run = f"{name}/{field_name}" if fields is not None else name
            jobs.append(Job(run, name, file, task, {**resolved, "field": field_name}))
    return jobs
