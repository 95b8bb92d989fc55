"""Run folders written as transactions, one writer at a time, with a record of how they were made.

A fit never writes into its run folder ``runs/x`` directly. Beside it live::

    runs/.x.staging/    the run being written; also where the checkpoint of an
                        interrupted run (Ctrl-C, kill, crash, full disk) stays,
                        and where ``--resume`` looks first
    runs/.x.replaced/   the previous run during the swap (removed once the new one is in place)
    runs/.x.lock        held with ``fcntl.flock`` while a process writes runs/x

Only a complete run replaces ``runs/x``: the old folder is renamed aside, the
staging folder renamed into place, and the old one removed. A crash at any
moment leaves the old run or the new one, never a mix; the next writer
finishes an interrupted swap (:meth:`RunFolder.recover`).

A finished run (one with ``metrics.json``) is replaced only with
``--overwrite``; ``--resume`` continues it (or an interrupted one) from its
checkpoint.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from rbfield.errors import RbfieldError

if TYPE_CHECKING:
    import torch

#: The file whose presence marks a finished run.
FINISHED_FILE = "metrics.json"
CHECKPOINT_FILE = "checkpoint.pt"
#: Bytes read at a time when hashing inputs.
HASH_CHUNK = 1 << 20


def staging_path(out: str | os.PathLike) -> Path:
    """The staging folder of run folder ``out``: ``<parent>/.<name>.staging``."""
    out = Path(out)
    return out.parent / f".{out.name}.staging"


def _replaced_path(out: Path) -> Path:
    return out.parent / f".{out.name}.replaced"


def _lock_path(out: Path) -> Path:
    return out.parent / f".{out.name}.lock"


def check_output_folder(path: str | os.PathLike, flag: str = "--out") -> None:
    """Refuse, before any work, an output folder that is a file or cannot be created or written."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RbfieldError(f"{flag} {path} is a file; name a folder (it is created if missing)")
    if path.is_dir():
        _check_writable(path, path, flag)
    else:
        _writable_ancestor(path, flag)


def check_output_file(path: str | os.PathLike, flag: str = "--out") -> None:
    """Refuse, before any work, an output file that names a folder or cannot be created."""
    path = Path(path)
    if path.is_dir():
        raise RbfieldError(f"{flag} {path} is a folder; name a file")
    _writable_ancestor(path, flag)


def _check_writable(folder: Path, target: Path, flag: str) -> None:
    """Refuse ``target`` when no file can be created in ``folder`` (tried, not guessed: permissions,
    read-only file systems and root's exemptions all count)."""
    try:
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as error:
        raise RbfieldError(
            f"cannot write {target}: {folder} is not writable ({error.strerror}); choose another {flag}"
        ) from None


def _writable_ancestor(path: Path, flag: str = "--out") -> None:
    """Refuse ``path`` when its nearest existing ancestor is a file or not writable."""
    for ancestor in path.parents:
        if ancestor.exists():
            if not ancestor.is_dir():
                raise RbfieldError(f"cannot create {path}: {ancestor} is a file, not a folder; choose another {flag}")
            _check_writable(ancestor, path, flag)
            return


class RunFolder:
    """One fit's run folder, written through a staging folder beside it.

    Args:
        out: the run folder.
        resume: continue from the checkpoint of an interrupted run (staging
            folder) or of a finished one (run folder).
        overwrite: replace a finished run, or discard an interrupted one.
    """

    def __init__(self, out: str | os.PathLike, resume: bool = False, overwrite: bool = False):
        self.out = Path(out)
        self.staging = staging_path(self.out)
        self.resume = resume
        self.overwrite = overwrite
        self._copied_checkpoint: tuple[int, int] | None = None

    @property
    def finished(self) -> bool:
        """Whether the run folder holds a finished run."""
        return (self.out / FINISHED_FILE).is_file()

    def resume_checkpoint(self) -> Path | None:
        """The checkpoint ``--resume`` continues from: the interrupted run's, else the finished run's."""
        for folder in (self.staging, self.out):
            if (folder / CHECKPOINT_FILE).is_file():
                return folder / CHECKPOINT_FILE
        return None

    def check(self) -> None:
        """Refuse, before any work and without touching a file, what :meth:`writing` would refuse.

        Raises:
            RbfieldError: ``out`` is a file or cannot be created; a finished
                run without ``--overwrite``/``--resume``; ``--resume`` with
                nothing to resume; an interrupted run neither resumed nor overwritten.
        """
        out = self.out
        if self.resume and self.overwrite:
            raise RbfieldError("--resume continues a run and --overwrite replaces it; give one of them")
        if out.exists() and not out.is_dir():
            raise RbfieldError(f"--out {out} is a file; name a folder for the run (it is created if missing)")
        _writable_ancestor(out)  # the staging folder and the swap need the parent
        if self.resume:
            if self.resume_checkpoint() is None:
                raise RbfieldError(f"{out}: no checkpoint to resume from; run without --resume first")
            return
        if self.finished and not self.overwrite:
            raise RbfieldError(
                f"{out} holds a finished run; add --overwrite to replace it, --resume to continue it, "
                "or choose another --out"
            )
        if (self.staging / CHECKPOINT_FILE).is_file() and not self.overwrite:
            raise RbfieldError(
                f"{out}: an interrupted run's checkpoint is in {self.staging}; continue it with --resume, "
                "or start afresh with --overwrite"
            )

    def recover(self) -> None:
        """Finish a swap that a crash interrupted: the complete staging folder goes into place."""
        replaced = _replaced_path(self.out)
        if not replaced.exists():
            return
        if not self.out.exists() and (self.staging / FINISHED_FILE).is_file():
            os.replace(self.staging, self.out)
        if self.out.exists():
            shutil.rmtree(replaced)
        else:  # the new run never got complete: the old one comes back
            os.replace(replaced, self.out)

    @contextmanager
    def writing(self) -> Iterator[Path]:
        """Lock the run, prepare the staging folder and yield it; on success put it in place.

        On an error or interrupt the run folder is unchanged; the staging
        folder is kept when training wrote a checkpoint into it (for
        ``--resume``), and removed otherwise.

        Raises:
            RbfieldError: another process writes the run; any refusal of :meth:`check`;
                the folders cannot be written.
        """
        with self._locked():
            self.recover()
            self.check()
            self._prepare_staging()
            try:
                yield self.staging
            except BaseException:
                self._discard_staging_without_progress()
                raise
            self._commit()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        lock = _lock_path(self.out)
        try:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            handle = open(lock, "a")
        except OSError as error:
            raise RbfieldError(f"cannot write {self.out}: {error.strerror}; choose another --out") from None
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RbfieldError(
                    f"{self.out}: another rbfield process is writing this run (lock {lock}); "
                    "wait for it to finish or choose another --out"
                ) from None
            yield
        finally:
            handle.close()  # releases the lock

    def _prepare_staging(self) -> None:
        try:
            if not self.resume and self.staging.exists():
                shutil.rmtree(self.staging)
            self.staging.mkdir(parents=True, exist_ok=True)
            checkpoint = self.staging / CHECKPOINT_FILE
            if self.resume and not checkpoint.exists():
                shutil.copy2(self.out / CHECKPOINT_FILE, checkpoint)
                stat = checkpoint.stat()
                self._copied_checkpoint = (stat.st_mtime_ns, stat.st_size)
        except OSError as error:
            raise RbfieldError(f"cannot write {self.staging}: {error.strerror}; choose another --out") from None

    def _discard_staging_without_progress(self) -> None:
        """Remove the staging folder unless training left a checkpoint of its own there."""
        checkpoint = self.staging / CHECKPOINT_FILE
        if checkpoint.exists():
            stat = checkpoint.stat()
            if (stat.st_mtime_ns, stat.st_size) != self._copied_checkpoint:
                return
        shutil.rmtree(self.staging, ignore_errors=True)

    def _commit(self) -> None:
        """Old run aside, staging into place, old run removed (see :meth:`recover` for a crash in between)."""
        replaced = _replaced_path(self.out)
        try:
            if self.out.exists():
                os.replace(self.out, replaced)
            os.replace(self.staging, self.out)
        except OSError as error:
            raise RbfieldError(
                f"cannot put the finished run in place at {self.out}: {error.strerror}; it is complete in "
                f"{self.staging}"
            ) from None
        shutil.rmtree(replaced, ignore_errors=True)


def sha256_of(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file, or of a folder: every file under it, in sorted order, by relative path and content."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with open(file, "rb") as handle:
            while chunk := handle.read(HASH_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def provenance(inputs: Iterable[str | os.PathLike], device: str | torch.device) -> dict:
    """How a result was made, for metrics.json: rbfield's version, the command line, the device the field ran
    on (e.g. "cpu", "cuda:0"), the thread count, and the SHA-256 of every input file or folder (see
    :func:`sha256_of`)."""
    import torch

    from rbfield import __version__

    return {
        "rbfield_version": __version__,
        "command": list(sys.argv),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "input_sha256": {str(path): sha256_of(path) for path in inputs},
    }
