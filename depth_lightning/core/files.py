"""Crash-safe files: everything the project writes goes to a temporary file in its destination
folder and is renamed into place, so a crash or a full disk never leaves a truncated file under
a final name (a rename within one folder is atomic; a move across file systems is not).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from depth_lightning.errors import DiskFullError

TMP_MARK = ".tmp-"  # in every temporary name, so a later run can find and remove leftovers


def tmp_name(path: Path) -> Path:
    """The temporary sibling of `path` for this process: `.NAME.tmp-PID`."""
    return path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")


def disk_full(path: Path, needed: int | None = None) -> DiskFullError:
    free = shutil.disk_usage(path.parent).free if path.parent.exists() else 0
    need = f"{needed / 1e6:.1f} MB needed, " if needed else ""
    return DiskFullError(f"{path}: no space left on the device ({need}{free / 1e6:.1f} MB free)")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], needed: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it to `path`, on any failure
    remove it. A full disk becomes one DiskFullError naming `path` (and `needed` bytes)."""
    path = Path(path)
    tmp = tmp_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise disk_full(path, needed) from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write `data` to `path` atomically (fsynced before the rename)."""
    with atomic_path(path, len(data)) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically."""
    return write_bytes(path, text.encode())


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write `obj` as indented JSON to `path` atomically."""
    return write_text(path, json.dumps(obj, indent=2))


def write_with(path: str | os.PathLike[str], write: Callable[[Path], Any]) -> Path:
    """Call `write(tmp)` to produce the file under a temporary name, then rename it to `path`
    (for writers that take a file name: numpy, PIL, matplotlib, h5py)."""
    with atomic_path(path) as tmp:
        write(tmp)
    return Path(path)


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Exclusive lock on `path` (the `filelock` package: every platform), so two processes
    sharing a data folder build a file once."""
    from filelock import FileLock

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path):
        yield


def remove_leftovers(folder: str | os.PathLike[str], pattern: str = "*") -> int:
    """Remove temporary files and folders of processes that no longer run (a killed run's
    `.NAME.tmp-PID`), matching `pattern`; return how many went."""
    removed = 0
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    for p in folder.glob(f"{pattern}{TMP_MARK}*"):
        pid = p.name.rsplit(TMP_MARK, 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
