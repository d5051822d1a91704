"""Spool files for access content: private while they exist, gone when the task ends, swept if it died.

An access ZIP is personal data. While it is checked and uploaded it lives in a folder only this user
can open (0700) as a file only this user can read (0600), created exclusively (no following a planted
link). The folder is removed on every way out of `spool_file` (return, exception, generator close).
A task killed with SIGKILL runs no cleanup at all, so every task that spools first calls
`sweep_stale_spools`, which removes the spool folders of earlier, dead tasks: folders with our
prefix, owned by us, whose process (the pid in the name) is gone or in which nothing changed for
`max_age_seconds`. A temp folder belongs to one host, so a pid in it names a process of this host.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

SPOOL_PREFIX = "privacy-spool-"
#: The archive task's spool folders before this module; a sweep removes those too.
LEGACY_SPOOL_PREFIXES = ("privacy-zip-",)
DEFAULT_STALE_SECONDS = 60 * 60


@dataclass(frozen=True, slots=True)
class Spool:
    folder: Path
    path: Path
    handle: BinaryIO  # opened read-write; `handle.fileno()` serves positional reads (os.pread)


@contextmanager
def spool_file(root: str | os.PathLike[str] | None = None, *, name: str = "content.zip") -> Iterator[Spool]:
    """A new private spool file under `root` (the system temp folder by default), removed on exit."""
    if "/" in name or name in ("", ".", ".."):
        raise ValueError("a spool file name is one plain path segment")
    folder = Path(tempfile.mkdtemp(prefix=f"{SPOOL_PREFIX}{os.getpid()}-", dir=root))  # mode 0700
    try:
        path = folder / name
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        handle = os.fdopen(os.open(path, flags, 0o600), "w+b")
        try:
            yield Spool(folder, path, handle)
        finally:
            handle.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def sweep_stale_spools(
    root: str | os.PathLike[str] | None = None,
    *,
    max_age_seconds: float = DEFAULT_STALE_SECONDS,
    now: float | None = None,
) -> list[Path]:
    """Remove spool folders left by killed tasks; returns the folders removed.

    A folder is stale when its name has our prefix, it is a real folder (not a link) owned by this
    user, and neither it nor anything directly in it changed for `max_age_seconds` (a live task's
    spool file changes as it downloads). `now` is a Unix time, for tests.
    """
    root = Path(root or tempfile.gettempdir())
    now = time.time() if now is None else now
    uid = os.geteuid()
    removed: list[Path] = []
    prefixes = (SPOOL_PREFIX, *LEGACY_SPOOL_PREFIXES)
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return removed
    for entry in entries:
        if not entry.name.startswith(prefixes):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid:
                continue
            if _owner_alive(entry.name) and now - _last_change(entry.path, info.st_mtime) < max_age_seconds:
                continue
        except FileNotFoundError:
            continue  # removed meanwhile (another task's sweep, or its owner finishing)
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(Path(entry.path))
    return sorted(removed)


def _owner_alive(name: str) -> bool:
    """Whether the process that made a spool folder (`<prefix><pid>-…`) still runs; True when unknown."""
    prefix = next((p for p in (SPOOL_PREFIX, *LEGACY_SPOOL_PREFIXES) if name.startswith(p)), None)
    pid_text = name[len(prefix):].split("-", 1)[0] if prefix else ""
    if not pid_text.isdigit():
        return True
    pid = int(pid_text)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive
    return True


def _last_change(folder: str, folder_mtime: float) -> float:
    newest = folder_mtime
    with os.scandir(folder) as children:
        for child in children:
            try:
                newest = max(newest, child.stat(follow_symlinks=False).st_mtime)
            except FileNotFoundError:
                continue
    return newest
