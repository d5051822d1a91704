"""Archive helpers: hash while streaming, and inspect a content ZIP before it is archived.

Adobe's access content is a ZIP with one folder per product. Before a ZIP is filed under `content/`
it must pass `privacy_pipeline.zipcheck.verify_zip`: every reading of every member (central
directory, local header, name-bearing extra fields, mode bits) is safe and agrees, and every member
reads through to its declared size and CRC. Nothing is ever extracted.
"""

from __future__ import annotations

import hashlib
from os import PathLike
from typing import BinaryIO

from privacy_pipeline.zipcheck import ZipLimits, ZipVerdict, verify_zip

__all__ = ["HashingReader", "HashingWriter", "ZipLimits", "ZipVerdict", "inspect_zip", "verify_zip"]


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


def inspect_zip(path: str | PathLike[str], max_uncompressed_bytes: int) -> ZipVerdict:
    """Verify the ZIP at `path` (see `privacy_pipeline.zipcheck`); `ok=False` names the first problem."""
    return verify_zip(path, ZipLimits(max_uncompressed_bytes=max_uncompressed_bytes))
