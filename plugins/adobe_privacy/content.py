"""Access content from download to S3 in one overlapped pass: spool, hash, verify, multipart upload.

`archive_content` reads the download's chunks once. Each chunk goes to a private spool file and into
the sha256, and every `part_size` bytes become a multipart part that worker threads upload while the
download goes on. When the download ends the spool is verified (`privacy_pipeline.zipcheck`: every
reading of every member, every member read through) while the last parts are still in flight. Only
a ZIP that passes is completed under its content key; any other is aborted there (nothing ever
appears under the content key) and stored under its quarantine key instead. A ZIP smaller than one
part is sent with one `PutObject` after its verification, never as a multipart upload.

Memory: one download chunk and the HTTP buffers of the parts in flight (parts are read back from the
spool as they are sent, from the page cache). Disk: the spool, which
`privacy_pipeline.spool` keeps private and removes on every way out; spool folders of killed tasks
are swept the first time a process archives into a spool root.

`archive_once` adds the ledger rule: a job whose archive record exists (archived *or* quarantined)
is never archived again, and its record is written once (a conditional write).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from privacy_pipeline.job_ids import checked_job_id
from privacy_pipeline.spool import Spool, spool_file, sweep_stale_spools
from privacy_pipeline.zipcheck import ZipLimits, verify_zip

log = logging.getLogger(__name__)

MIB = 1024**2
DEFAULT_PART_SIZE = 8 * MIB  # S3's minimum is 5 MiB (except the last part); 10,000 parts at most
SPOOL_BLOCK = 4 * MIB
DEFAULT_MAX_CONCURRENCY = 10  # as boto3's managed transfers
CHECKSUM_ALGORITHM = "CRC32"  # what boto3's managed transfers ask S3 to verify per part
_swept_roots: set[str] = set()
_sweep_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class ContentResult:
    outcome: Literal["archived", "quarantined"]
    key: str | None  # where the bytes are: the content key, the quarantine key, or None (not stored)
    sha256: str
    size: int
    reason: str | None = None  # the verdict's first problem: member index and class, no content
    problem: str | None = None
    member: int | None = None

    @property
    def archived(self) -> bool:
        return self.outcome == "archived"

    def record(self, job_id: str, *, archived_at: str | None = None) -> dict[str, Any]:
        """The job's archive record (the ledger's `jobs/<job_id>.json`); `content_key` as before."""
        fields = asdict(self)
        return {
            "job_id": job_id,
            "content_key": fields.pop("key"),
            **fields,
            "archived_at": archived_at or datetime.now(UTC).isoformat(),
        }


class ContentTooLarge(Exception):
    """The download went past `max_download_bytes`: it is not read further, nor stored."""


def archive_content(
    chunks: Iterable[bytes],
    *,
    s3_client: Any,
    bucket: str,
    key: str,
    quarantine_key: str | None,
    encryption_args: Mapping[str, str],
    limits: ZipLimits,
    spool_root: str | None = None,
    max_download_bytes: int | None = None,
    part_size: int = DEFAULT_PART_SIZE,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    content_type: str = "application/zip",
) -> ContentResult:
    """Spool, hash, verify and upload one content ZIP; the verdict decides `key` or `quarantine_key`.

    `max_download_bytes` (default: twice the uncompressed cap plus 64 MiB) stops a download that can
    never be a ZIP under the cap; it is quarantined with nothing stored. Errors of the download or of
    S3 propagate (the task retries), with the multipart upload aborted and the spool removed.
    """
    if part_size < 5 * MIB:
        raise ValueError("part_size must be at least 5 MiB (S3's minimum part size)")
    limit = max_download_bytes or 2 * limits.max_uncompressed_bytes + 64 * MIB
    _sweep_once(spool_root)
    size = 0
    with spool_file(spool_root) as spool:
        upload = _MultipartUpload(s3_client, bucket, key, encryption_args, content_type, max_concurrency)
        writer = _SpoolWriter(spool, upload, part_size)
        writer.start()
        try:
            block: list[bytes] = []  # chunks are handed over a few MiB at a time: fewer thread switches
            block_size = 0
            for chunk in chunks:
                if not chunk:
                    continue
                size += len(chunk)
                if size > limit:
                    raise ContentTooLarge(f"download larger than {limit} bytes")
                block.append(chunk)
                block_size += len(chunk)
                if block_size >= SPOOL_BLOCK:
                    writer.put(block)
                    block, block_size = [], 0
            if block:
                writer.put(block)
            sha256 = writer.finish()
            verdict = verify_zip(spool.handle, limits)
            if verdict.ok:
                if upload.started:
                    upload.complete()
                else:
                    _put_spool(s3_client, bucket, key, spool, encryption_args, content_type)
                return ContentResult("archived", key, sha256, size)
            upload.abort()
            if quarantine_key:
                _put_spool(s3_client, bucket, quarantine_key, spool, encryption_args, content_type)
            return ContentResult("quarantined", quarantine_key, sha256, size, verdict.reason,
                                 verdict.problem, verdict.member)
        except ContentTooLarge as err:
            writer.cancel()
            upload.abort()
            return ContentResult("quarantined", None, writer.digest.hexdigest(), size,
                                 f"archive: {err} (size-cap)", "size-cap", None)
        except BaseException:
            writer.cancel()
            upload.abort()
            raise
        finally:
            upload.close()


class _SpoolWriter(threading.Thread):
    """Writes chunks to the spool, hashes them and hands full parts to the upload, off the download thread.

    A disk that writes slower than the network would otherwise stall the download on every write;
    here the download only waits when `depth` blocks of chunks are queued (the memory bound: `depth`
    times `SPOOL_BLOCK` or one chunk, whichever is larger).
    """

    def __init__(self, spool: Spool, upload: _MultipartUpload, part_size: int, depth: int = 4) -> None:
        super().__init__(name="content-spool", daemon=True)
        self.spool, self.upload, self.part_size = spool, upload, part_size
        self.queue: queue.Queue[list[bytes] | None] = queue.Queue(maxsize=depth)
        self.digest = hashlib.sha256()
        self.error: BaseException | None = None
        self.cancelled = False

    def put(self, block: list[bytes] | None) -> None:
        while True:
            if self.error is not None:
                raise self.error
            try:
                self.queue.put(block, timeout=0.2)
                return
            except queue.Full:
                if not self.is_alive():
                    raise RuntimeError("the spool writer stopped") from self.error

    def finish(self) -> str:
        """Wait until every chunk is written and every part handed over; the sha256 of the whole."""
        self.put(None)
        self.join()
        if self.error is not None:
            raise self.error
        return self.digest.hexdigest()

    def cancel(self) -> None:
        """Stop writing: the thread drains what is queued (so this put returns) and ends."""
        self.cancelled = True
        if self.is_alive():
            self.queue.put(None)
            self.join()

    def run(self) -> None:
        handle, written, part_start = self.spool.handle, 0, 0
        try:
            while (block := self.queue.get()) is not None:
                if self.cancelled:
                    continue  # drain, so that the download thread never blocks on a full queue
                for chunk in block:
                    handle.write(chunk)
                    self.digest.update(chunk)
                    written += len(chunk)
                if written - part_start >= self.part_size:
                    handle.flush()  # parts are read back from the spool (page cache), not held
                    self.upload.send(self.spool, part_start, written - part_start)
                    part_start = written
            handle.flush()
            if written > part_start and self.upload.started and not self.cancelled:
                self.upload.send(self.spool, part_start, written - part_start)
        except BaseException as err:
            self.error = err
            while self.queue.get() is not None:  # keep draining until the download thread stops
                pass


def archive_once(
    open_chunks: Callable[[], AbstractContextManager[Iterable[bytes]]],
    *,
    job_id: str,
    record_key: str,
    s3_client: Any,
    bucket: str,
    encryption_args: Mapping[str, str],
    **content_args: Any,
) -> tuple[dict[str, Any], bool]:
    """Archive a job's content unless its record exists; `(record, written_now)`.

    A record, archived or quarantined, is final: it is returned as it is and nothing is downloaded.
    The record is written with `If-None-Match: *`, so two tries racing write it once; the loser reads
    the winner's. `open_chunks()` opens the download (e.g. `hook.stream_content(detail)`); other
    keyword arguments go to `archive_content`.
    """
    checked_job_id(job_id)
    existing = _get_json(s3_client, bucket, record_key)
    if existing is not None:
        return existing, False
    with open_chunks() as chunks:
        result = archive_content(chunks, s3_client=s3_client, bucket=bucket, encryption_args=encryption_args,
                                 **content_args)
    record = result.record(job_id)
    body = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
    try:
        s3_client.put_object(Bucket=bucket, Key=record_key, Body=body, ContentType="application/json",
                             IfNoneMatch="*", **encryption_args)
    except s3_client.exceptions.ClientError as err:
        if err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") not in (409, 412):
            raise
        return _get_json(s3_client, bucket, record_key) or record, False
    return record, True


class _MultipartUpload:
    """Parts uploaded by a small thread pool while the caller goes on; started by the first part."""

    def __init__(self, client: Any, bucket: str, key: str, encryption_args: Mapping[str, str],
                 content_type: str, max_concurrency: int) -> None:
        self.client, self.bucket, self.key = client, bucket, key
        self.create_args = {"ContentType": content_type, "ChecksumAlgorithm": CHECKSUM_ALGORITHM,
                            **encryption_args}
        self.slots = threading.BoundedSemaphore(max(1, max_concurrency))
        self.max_concurrency = max(1, max_concurrency)
        self.pool: ThreadPoolExecutor | None = None
        self.upload_id: str | None = None
        self.parts: list[Future[dict[str, Any]]] = []
        self.failure: BaseException | None = None  # the first failed part: stops the download early

    @property
    def started(self) -> bool:
        return self.upload_id is not None

    def send(self, spool: Spool, offset: int, length: int) -> None:
        if self.upload_id is None:
            created = self.client.create_multipart_upload(Bucket=self.bucket, Key=self.key, **self.create_args)
            self.upload_id = created["UploadId"]
            self.pool = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="content-part")
        self.slots.acquire()  # back-pressure: the download waits while every worker is busy
        if self.failure is not None:
            self.slots.release()
            raise self.failure
        try:
            assert self.pool is not None  # started above
            future = self.pool.submit(self._upload_part, len(self.parts) + 1, _SpoolWindow(spool, offset, length))
        except BaseException:
            self.slots.release()
            raise
        future.add_done_callback(self._part_done)
        self.parts.append(future)

    def _part_done(self, future: Future[dict[str, Any]]) -> None:
        if not future.cancelled() and future.exception() is not None and self.failure is None:
            self.failure = future.exception()
        self.slots.release()

    def _upload_part(self, number: int, body: _SpoolWindow) -> dict[str, Any]:
        answer = self.client.upload_part(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                                         PartNumber=number, Body=body, ChecksumAlgorithm=CHECKSUM_ALGORITHM)
        part = {"PartNumber": number, "ETag": answer["ETag"]}
        if f"Checksum{CHECKSUM_ALGORITHM}" in answer:
            part[f"Checksum{CHECKSUM_ALGORITHM}"] = answer[f"Checksum{CHECKSUM_ALGORITHM}"]
        return part

    def complete(self) -> None:
        parts = [future.result() for future in self.parts]
        self.client.complete_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                                              MultipartUpload={"Parts": parts})
        self.upload_id = None

    def abort(self) -> None:
        """Stop and drop the upload: S3 keeps nothing under the key (a no-op if none was started)."""
        if self.upload_id is None:
            return
        for future in self.parts:
            future.cancel()
        if self.pool is not None:
            self.pool.shutdown(wait=True)
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)
        except Exception:  # the bucket's lifecycle rule removes incomplete uploads left behind
            log.warning("Could not abort the multipart upload of %s", self.key, exc_info=True)
        self.upload_id = None

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


class _SpoolWindow:
    """A part's bytes as a file object over the spool: read when sent, never held whole in memory.

    Positional reads (`os.pread`) on the spool's descriptor, so parts read in parallel threads and
    the download's writes never move each other's file position.
    """

    def __init__(self, spool: Spool, offset: int, length: int) -> None:
        self._fd, self._offset, self._length, self._position = spool.handle.fileno(), offset, length, 0

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = -1) -> bytes:
        left = self._length - self._position
        size = left if size is None or size < 0 else min(size, left)
        data = os.pread(self._fd, size, self._offset + self._position) if size > 0 else b""
        self._position += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._position, 2: self._length}[whence]
        self._position = min(max(0, base + offset), self._length)
        return self._position

    def tell(self) -> int:
        return self._position


def _put_spool(client: Any, bucket: str, key: str, spool: Spool, encryption_args: Mapping[str, str],
               content_type: str) -> None:
    """Upload the spool file whole: one PutObject when small, else boto3's managed multipart transfer."""
    spool.handle.seek(0, 2)
    if spool.handle.tell() < DEFAULT_PART_SIZE:
        spool.handle.seek(0)
        client.put_object(Bucket=bucket, Key=key, Body=spool.handle, ContentType=content_type, **encryption_args)
    else:
        client.upload_file(str(spool.path), bucket, key, ExtraArgs={"ContentType": content_type, **encryption_args})


def _get_json(client: Any, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        return json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    except client.exceptions.NoSuchKey:
        return None


def _sweep_once(spool_root: str | None) -> None:
    """Remove stale spool folders under `spool_root` the first time this process archives into it."""
    root = str(spool_root or "")
    with _sweep_lock:
        if root in _swept_roots:
            return
        _swept_roots.add(root)
    removed = sweep_stale_spools(spool_root)
    if removed:
        log.warning("Removed %d spool folder(s) left by killed tasks", len(removed))
