"""Atomic file writes: readers (and parallel pytest workers) never see a half-written file; named arrays as .npz."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np


def atomic_write(path: str | os.PathLike[str], data: bytes | str | Callable[[BinaryIO], object]) -> Path:
    """Write `data` (bytes, text, or a callback given the open binary file) to `path` via temp + `os.replace`."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the mode open() would
        with os.fdopen(fd, "wb") as fh:
            if callable(data):
                data(fh)
            else:
                fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return target


def save_tensors(path: str | os.PathLike[str], tensors: Mapping[str, np.ndarray]) -> Path:
    """Write named arrays to an ``.npz`` atomically (no pickle); a ``/`` in a name is stored as ``__``."""
    # Any: np.savez's stub types **kwds against its own keyword arguments (allow_pickle: bool)
    arrays: dict[str, Any] = {name.replace("/", "__"): np.asarray(value) for name, value in tensors.items()}
    return atomic_write(path, lambda fh: np.savez(fh, **arrays))


def load_tensors(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read what `save_tensors` wrote, names restored, with ``allow_pickle=False``."""
    with np.load(path, allow_pickle=False) as npz:
        return {name.replace("__", "/"): npz[name] for name in npz.files}
