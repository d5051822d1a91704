"""Access-job content: a ZIP with one folder per product, streamed with flat memory.

Layout (Adobe shows none; our choice): ``<jobId>/<Product display name>/`` per ``include`` product, with
``response.json`` (the product's status) and, for products that found data (6000/6054), ``data-NNNN.json``
parts of at most 1 MiB holding seeded pseudo-random filler, so ``content_bytes`` is the real size of the
download. Entries are ZIP_STORED with a fixed timestamp: the same job and seed always yield the same
bytes. zipfile writes to an unseekable sink (data descriptors), and each flushed buffer is yielded.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import zipfile
from collections.abc import Iterator

from privacy_emulator.catalog import Catalog
from privacy_emulator.lifecycle import data_products, product_outcome
from privacy_emulator.settings import EmulatorSettings
from privacy_emulator.store import JobRecord

PART_BYTES = 1024 * 1024
FILLER_CHUNK_BYTES = 64 * 1024
ZIP_TIMESTAMP = (2020, 1, 14, 0, 0, 0)


class _ChunkSink:
    """A write-only, unseekable file object whose written bytes are drained by the generator."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def write(self, data: bytes) -> int:
        self._buffer += data
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        data = bytes(self._buffer)
        self._buffer.clear()
        return data


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
    info.compress_type = zipfile.ZIP_STORED
    return info


def _filler(rng: random.Random, size: int) -> Iterator[bytes]:
    """``size`` bytes of lowercase hex (valid inside a JSON string)."""
    while size > 0:
        step = min(size, FILLER_CHUNK_BYTES)
        yield rng.randbytes((step + 1) // 2).hex()[:step].encode()
        size -= step


def _part_sizes(total: int, products: int) -> list[list[int]]:
    """Split ``total`` filler bytes over products, each in parts of at most PART_BYTES."""
    if products == 0:
        return []
    sizes = []
    for index in range(products):
        share = total // products + (1 if index < total % products else 0)
        parts = [PART_BYTES] * (share // PART_BYTES)
        if share % PART_BYTES or not parts:
            parts.append(share % PART_BYTES)
        sizes.append(parts)
    return sizes


def zip_stream(job: JobRecord, settings: EmulatorSettings, catalog: Catalog) -> Iterator[bytes]:
    """The ZIP bytes of a complete access job, in chunks of about FILLER_CHUNK_BYTES."""
    sink = _ChunkSink()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        with_data = data_products(job, settings)
        part_sizes = dict(zip(with_data, _part_sizes(settings.content_bytes, len(with_data)), strict=True))
        for code in job.include:
            folder = f"{job.job_id}/{catalog.products[code]}/"
            archive.writestr(_entry(folder), b"")
            status = {
                "jobId": job.job_id,
                "product": catalog.products[code],
                "responseMsgCode": f"PRVCY-{product_outcome(settings, job.job_id, code)}-200",
                "identities": len(job.user_ids),
            }
            archive.writestr(_entry(folder + "response.json"), json.dumps(status, indent=2))
            yield sink.drain()
            for number, size in enumerate(part_sizes.get(code, []), start=1):
                rng = random.Random(f"{settings.seed}:{job.job_id}:{code}:{number}")
                with archive.open(
                    _entry(f"{folder}data-{number:04d}.json"), mode="w", force_zip64=True
                ) as part:
                    part.write(json.dumps({"product": catalog.products[code], "part": number})[:-1].encode())
                    part.write(b', "payload": "')
                    for chunk in _filler(rng, size):
                        part.write(chunk)
                        yield sink.drain()
                    part.write(b'"}')
                yield sink.drain()
    yield sink.drain()


def blob_token(secret: str, job_id: str) -> str:
    """The unguessable path segment of a legacy blob download link for a job."""
    return hmac.new(secret.encode(), job_id.encode(), hashlib.sha256).hexdigest()[:32]


def verify_blob_token(secret: str, job_id: str, token: str) -> bool:
    return hmac.compare_digest(blob_token(secret, job_id), token)
