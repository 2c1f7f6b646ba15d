"""Checkpoints written atomically: a crash while saving never leaves a truncated ``last.ckpt``.

Lightning's ``TorchCheckpointIO`` serializes into memory, then lets fsspec write the file; for a local path
fsspec writes a temporary file in the system's temp folder and *moves* it over the target, which is a copy
(not atomic) when that folder is on another filesystem, with no ``fsync``. ``AtomicCheckpointIO`` writes to
a temporary file next to the target (so the same filesystem), flushes and ``fsync``s it, then
``os.replace``s it over the target and ``fsync``s the folder: a reader sees the old checkpoint or the
new one, whole, even after a SIGKILL or a power cut. An interrupted save leaves only a hidden
``.<name>.<random>.tmp`` file, which no ``*.ckpt`` pattern matches (``--ckpt_path last`` ignores it); the
next successful save of the same folder removes such leftovers.

The zoo's CLI uses it by default (``trainer.plugins``); in Python: ``L.Trainer(plugins=[AtomicCheckpointIO()])``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
from typing import Any

import torch
from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO

__all__ = ["AtomicCheckpointIO", "atomic_torch_save"]

TEMP_SUFFIX = ".tmp"


def _fsync_folder(folder: str) -> None:
    # Makes the rename itself durable; not every platform can open a folder (Windows cannot).
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_torch_save(obj: Any, path: _PATH) -> None:
    """``torch.save(obj, path)`` through a fsynced temporary file in the same folder and ``os.replace``."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(4)}{TEMP_SUFFIX}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for any new file
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    _fsync_folder(folder)


def _remove_stale_temporaries(path: str) -> None:
    """Leftovers of earlier saves of ``path`` that a crash interrupted (one process saves a path at a time)."""
    pattern = os.path.join(glob.escape(os.path.dirname(os.path.abspath(path))), f".{glob.escape(os.path.basename(path))}.*{TEMP_SUFFIX}")
    for leftover in glob.glob(pattern):
        with contextlib.suppress(OSError):
            os.remove(leftover)


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose saves are atomic on local paths (see the module's docstring).

    Remote paths (``s3://...``) keep Lightning's transactional upload: object stores publish a whole
    object or none.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__}.save_checkpoint takes no storage_options, got {storage_options!r}")
        if not isinstance(get_filesystem(path), LocalFileSystem):
            super().save_checkpoint(checkpoint, path)
            return
        atomic_torch_save(checkpoint, path)
        _remove_stale_temporaries(os.fspath(path))
