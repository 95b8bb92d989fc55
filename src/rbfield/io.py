"""Saving and loading: atomic writes, fields as safetensors + JSON, fp16 export.

A saved field is one ``.safetensors`` file whose metadata holds the JSON
config (preset, signal spec, budget, seed), so it is self-contained; a
``field.json`` copy beside it is for people. Every write goes to a temporary
file in the same folder, is flushed to disk and then renamed over the target,
so a crash or a full disk never leaves a half-written file behind.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_save

from rbfield.errors import RbfieldError
from rbfield.fields import FieldBase, field_from_config

FIELD_FILE = "field.safetensors"
CONFIG_FILE = "field.json"
CHECKPOINT_FILE = "checkpoint.pt"
#: Frozen geometry stays float32 in the compact export: inverse covariances
#: of pixel-sized kernels exceed fp16's range (65504).
KEEP_FP32 = ("centres", "shapes")


def atomic_write_with(path: str | os.PathLike, write: Callable[[Path], None]) -> None:
    """Run ``write(temporary)`` on a temporary file in ``path``'s folder (same
    suffix, for writers that go by it), then rename it over ``path``.

    Raises:
        RbfieldError: the folder is missing or not writable, or the disk is
            full; the previous file at ``path`` (if any) is left untouched. On
            any failure, Ctrl-C included, the temporary file is removed.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix or ".tmp")
        os.close(handle)
    except OSError as error:
        raise RbfieldError(f"cannot write {path}: {error.strerror}") from None
    try:
        write(Path(temporary))
        os.chmod(temporary, 0o666 & ~_current_umask())  # mkstemp makes 0600; give the user's usual mode
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        hint = "; the disk is full" if error.errno == errno.ENOSPC else ""
        raise RbfieldError(f"cannot write {path}: {error.strerror}{hint}; the previous file is unchanged") from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _current_umask() -> int:
    """The process's umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write bytes to ``path`` via a temporary file, flushed to disk, and a
    rename (errors as :func:`atomic_write_with`)."""

    def write(temporary: Path) -> None:
        with open(temporary, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())

    atomic_write_with(path, write)


def atomic_write_json(path: str | os.PathLike, data: dict) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2, sort_keys=False) + "\n").encode())


def atomic_torch_save(path: str | os.PathLike, obj) -> None:
    """``torch.save`` to ``path`` atomically, streamed to the file (no copy of
    the serialised bytes in memory: a 100M-parameter checkpoint with its
    optimizer state is 1.2 GB)."""

    def write(temporary: Path) -> None:
        with open(temporary, "wb") as file:
            torch.save(obj, file)
            file.flush()
            os.fsync(file.fileno())

    atomic_write_with(path, write)


def field_bytes(field: FieldBase, half: bool = False) -> bytes:
    """The field's state as safetensors bytes, config in the metadata.

    Args:
        half: store floating tensors as float16, except frozen geometry.
    """
    tensors = {}
    for name, tensor in field.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        if half and tensor.is_floating_point() and not name.endswith(KEEP_FP32):
            tensor = tensor.half()
        tensors[name] = tensor
    return safetensors_save(tensors, metadata={"rbfield_config": json.dumps(field.config)})


def save_field(field: FieldBase, destination: str | os.PathLike) -> Path:
    """Write a field: into a run folder (``field.safetensors`` + ``field.json``), or to a ``.safetensors``
    file (its config copy beside it, same stem, ``.json``). Returns the weights path."""
    destination = Path(destination)
    if destination.suffix == ".safetensors":
        weights, config = destination, destination.with_suffix(".json")
    else:
        weights, config = destination / FIELD_FILE, destination / CONFIG_FILE
    atomic_write_bytes(weights, field_bytes(field))
    atomic_write_json(config, field.config)
    return weights


def export_compact(field: FieldBase, path: str | os.PathLike) -> int:
    """Write the fp16 compact export; returns its size in bytes."""
    data = field_bytes(field, half=True)
    atomic_write_bytes(path, data)
    return len(data)


def resolve_field_path(path: str | os.PathLike) -> Path:
    """Accept a run folder or a ``.safetensors`` file; return the weights file."""
    path = Path(path)
    if path.is_dir():
        path = path / FIELD_FILE
    if not path.exists():
        raise RbfieldError(f"{path}: no such file; pass a run folder or a .safetensors field")
    return path


def read_field_config(path: str | os.PathLike, task: str | None = None) -> dict:
    """The config stored in a field file (run folder or ``.safetensors``), without loading the weights.

    Args:
        task: if given, the task the field must have been fitted for (a clear error otherwise).
    """
    path = resolve_field_path(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            config = json.loads((handle.metadata() or {})["rbfield_config"])
    except (SafetensorError, OSError, KeyError, ValueError) as error:
        raise RbfieldError(
            f"{path}: not an rbfield field file ({type(error).__name__}); pass the field.safetensors of a run"
        ) from None
    try:
        fitted_for = field_task(config)
    except (RbfieldError, AttributeError) as error:
        raise RbfieldError(f"{path}: {error if isinstance(error, RbfieldError) else 'unreadable config'}") from None
    if task is not None and fitted_for != task:
        raise RbfieldError(
            f"{path}: this field was fitted by `{TASK_COMMANDS[fitted_for]}`; "
            f"pass a run folder of `{TASK_COMMANDS[task]}`"
        )
    return config


def field_task(config: dict) -> str:
    """The task ("image", "sdf" or "radiance") a field config was built for.

    Raises:
        RbfieldError: a config without a task (written by a version of rbfield that kept none).
    """
    if "spec" not in config and config.get("kind") == "radiance":  # saved by rbfield 0.1
        return "radiance"
    task = (config.get("spec") or {}).get("task")
    if task not in TASK_COMMANDS:
        raise RbfieldError(
            f"the field's config names no task this rbfield knows ({task!r}); it was written by another version "
            "of rbfield: fit it again with this one"
        )
    return task


TASK_COMMANDS = {"image": "rbfield fit image", "sdf": "rbfield fit sdf", "radiance": "rbfield fit nerf"}


def load_field(path: str | os.PathLike, device: str | torch.device = "cpu", task: str | None = None) -> FieldBase:
    """Load a field saved by :func:`save_field` or :func:`export_compact`.

    Args:
        path: a run folder or a ``.safetensors`` file.
        device: where to put it.
        task: if given, the task the field must have been fitted for (a clear error otherwise).

    Returns:
        The field in eval mode, float32.
    """
    config = read_field_config(path, task)
    path = resolve_field_path(path)
    field = field_from_config(config)
    try:
        with safe_open(str(path), framework="pt") as handle:
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except (SafetensorError, OSError) as error:
        raise RbfieldError(
            f"{path}: unreadable weights ({type(error).__name__}); pass the field.safetensors of a run"
        ) from None
    state = {name: tensor.float() if tensor.is_floating_point() else tensor for name, tensor in tensors.items()}
    try:
        field.load_state_dict(state)
    except RuntimeError as error:
        raise RbfieldError(f"{path}: weights do not match their config: {str(error).splitlines()[0]}") from None
    return field.to(device).eval()
