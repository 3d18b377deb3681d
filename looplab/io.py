"""Atomic file writes: a temp file in the same folder, fsync, then rename over the target."""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from looplab import faults
from looplab.errors import LoopLabError


def _file_mode() -> int:
    """0666 minus the process umask: what open() would give a new file (mkstemp gives 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE = _file_mode()
_NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # disk full, quota, file size limit


class WriteError(LoopLabError):
    """A file could not be written (disk full, permissions); the previous version is intact."""


def atomic_write(path: str | os.PathLike, write: Callable[[IO[Any]], None], binary: bool = False,
                 sync: bool = True) -> None:
    """Write `path` atomically with the `write(fileobj)` callback. With `sync` (the default) the data reach
    the disk before the rename; without it the rename still replaces the file whole if the process dies,
    but a crash of the machine may leave the previous version: for files rewritten often whose content
    a synced file also holds."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            write(f)
            faults.DISK.check(path)
            f.flush()
            if sync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        _remove(tmp)
        tmp = None
        room = f" ({format_bytes(free_space(path))} free there)" if e.errno in _NO_ROOM else ""
        raise WriteError(f"cannot write {path}: {e.strerror or e}{room}") from e
    finally:
        _remove(tmp)


def _remove(tmp: str | None) -> None:
    if tmp is not None and os.path.exists(tmp):
        os.unlink(tmp)


def write_text(path: str | os.PathLike, text: str, sync: bool = True) -> None:
    atomic_write(path, lambda f: f.write(text), sync=sync)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write(path, lambda f: f.write(json.dumps(obj, indent=2, default=_json_default) + "\n"))


def write_csv(path: str | os.PathLike, df: Any, sync: bool = True) -> None:
    """Write a pandas DataFrame as CSV atomically (`sync`: see atomic_write)."""
    atomic_write(path, lambda f: df.to_csv(f, index=False), sync=sync)


class _RecordedWrites:
    """A file whose failed write is kept: torch.save turns it into a RuntimeError without the OSError."""

    def __init__(self, f: IO[Any]):
        self.f = f
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self.f.write(data)
        except OSError as e:
            self.error = e
            raise

    def flush(self) -> None:
        self.f.flush()


def torch_save(path: str | os.PathLike, obj: Any) -> None:
    import torch

    def write(f: IO[Any]) -> None:
        sink = _RecordedWrites(f)
        try:
            torch.save(obj, sink)
        except RuntimeError:
            if sink.error is not None:  # a full disk, not a torch problem
                raise sink.error from None
            raise

    atomic_write(path, write, binary=True)


def torch_load(path: str | os.PathLike) -> Any:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def free_space(path: str | os.PathLike) -> int:
    """Bytes free for this user on the file system of `path` (or of its nearest existing parent)."""
    path = Path(path)
    while not path.exists() and path.parent != path:
        path = path.parent
    return shutil.disk_usage(path).free


def format_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_json_object(path: str | os.PathLike) -> dict:
    """A JSON object file's contents; {} when it is missing, unreadable or not an object."""
    try:
        out = read_json(path)
        return out if isinstance(out, dict) else {}
    except (OSError, ValueError):
        return {}


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")
