"""Archive helpers: hash while streaming, and inspect a content ZIP before it is archived.

Adobe's access content is a ZIP with one folder per product. Before a ZIP is filed under `content/`
it must be a real ZIP whose members could never escape an extraction directory (no absolute paths,
no `..`, no symlinks) and whose declared uncompressed size stays under a cap (a zip bomb otherwise).
All of that is read from the central directory: nothing is ever extracted.
"""

from __future__ import annotations

import hashlib
import stat
import zipfile
from dataclasses import dataclass
from os import PathLike
from typing import BinaryIO


class HashingWriter:
    """Wraps a binary sink; counts bytes and computes sha256 of everything written through it."""

    def __init__(self, sink: BinaryIO):
        self._sink = sink
        self._digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._digest.update(data)
        self.size += len(data)
        self._sink.write(data)
        return len(data)

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()


class HashingReader:
    """Wraps a binary source; counts bytes and computes sha256 of everything read through it."""

    def __init__(self, source: BinaryIO):
        self._source = source
        self._digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self._digest.update(data)
        self.size += len(data)
        return data

    def readable(self) -> bool:
        return True

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()


@dataclass(frozen=True, slots=True)
class ZipVerdict:
    ok: bool
    reason: str | None
    members: int
    uncompressed_bytes: int


def inspect_zip(path: str | PathLike[str], max_uncompressed_bytes: int) -> ZipVerdict:
    """Check the ZIP at `path` from its central directory; `ok=False` names the first problem found."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as err:
        return ZipVerdict(False, f"not a readable ZIP file ({err.__class__.__name__})", 0, 0)
    total = 0
    for info in infos:
        total += info.file_size
        problem = _member_problem(info)
        if problem:
            return ZipVerdict(False, problem, len(infos), total)
    if total > max_uncompressed_bytes:
        return ZipVerdict(
            False, f"uncompressed size {total} bytes exceeds the cap of {max_uncompressed_bytes}", len(infos), total
        )
    return ZipVerdict(True, None, len(infos), total)


def _member_problem(info: zipfile.ZipInfo) -> str | None:
    # Member names come from the archive, not from a data subject's identities: safe to show.
    name = info.filename
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or (len(normalised) > 1 and normalised[1] == ":"):
        return f"member {name!r} has an absolute path"
    if ".." in normalised.split("/"):
        return f"member {name!r} escapes the archive with '..'"
    if "\x00" in name:
        return "a member name contains a NUL byte"
    mode = info.external_attr >> 16
    if info.create_system == 3 and stat.S_ISLNK(mode):
        return f"member {name!r} is a symbolic link"
    return None
