"""The ledger in S3, typed: every read and write of `<root>/ledger/` goes through `PrivacyLedger`.

`privacy_pipeline.ledger` holds the rules (entries, transitions, recovery); this class only knows where
each document lives (`privacy_pipeline.layout`) and turns JSON into types and back. Readers tolerate
both names of a renamed marker (`pending/`, formerly `deferred/`); writers use the current one.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from privacy_pipeline.batching import Batch
    from privacy_pipeline.layout import ArchiveLayout
    from privacy_pipeline.ledger import LedgerEntry

    from adobe_privacy.storage import PrivacyArchiveStore

#: Fields of a pending marker: what a later run needs to carry the batch without reading it.
PENDING_FIELDS = ("batch_id", "key", "regulation", "subjects", "jobs_expected", "deadline")


class PrivacyLedger:
    """Typed access to the ledger documents under one archive root.

    :param store: the encrypted S3 store of the archive root.
    :param layout: where each document lives under that root.
    """

    def __init__(self, store: PrivacyArchiveStore, layout: ArchiveLayout) -> None:
        self.store = store
        self.layout = layout
        #: The last listing of each prefix `_ids` made (key -> ETag), for `open_batches` to reuse once.
        self._listings: dict[str, dict[str, str]] = {}

    # -- batch entries (the exactly-once protocol) ---------------------------------------------------
    def entry(self, batch_id: str) -> LedgerEntry | None:
        from privacy_pipeline.ledger import LedgerEntry

        document = self.store.get_json(self.layout.ledger_batch(batch_id))
        return LedgerEntry.from_json(document) if document is not None else None

    def require_entry(self, batch_id: str) -> LedgerEntry:
        entry = self.entry(batch_id)
        if entry is None:
            raise RuntimeError(f"ledger entry for batch {batch_id} is missing")
        return entry

    def put_entry(self, entry: LedgerEntry) -> None:
        self.store.put_json(self.layout.ledger_batch(entry.batch_id), entry.to_json())

    def posts_of_run(self, batch_ids: Iterable[str], run_id: str) -> int:
        """POST /jobs requests run `run_id` sent for these batches (every try of every submit task)."""
        total = 0
        for batch_id in sorted(set(batch_ids)):
            entry = self.entry(batch_id)
            if entry is not None:
                total += entry.posts.get(run_id, 0)
        return total

    # -- pending markers: staged or postponed, not yet submitted -------------------------------------
    def mark_pending(self, batch: Batch | dict[str, Any], *, key: str | None = None, reason: str) -> None:
        """List a batch for a later run to carry until its submit writes the open marker."""
        if isinstance(batch, dict):
            marker = {name: batch[name] for name in PENDING_FIELDS if name in batch}
        else:
            from privacy_pipeline.deadlines import deadline_facts

            marker = {"batch_id": batch.batch_id, "key": key, "regulation": batch.shape.regulation,
                      "subjects": len(batch.subjects), "jobs_expected": batch.jobs_expected,
                      "deadline": deadline_facts(batch)}
        self.store.put_json(self.layout.ledger_pending(marker["batch_id"]), {**marker, "reason": reason})

    def clear_pending(self, batch_id: str) -> None:
        """Drop the batch's pending marker (both names). Call only once its open marker is written."""
        self.store.delete(self.layout.ledger_pending(batch_id))
        self.store.delete(self.layout.ledger_pending_legacy(batch_id))

    def pending_markers(self, exclude: Iterable[str] = ()) -> list[dict[str, Any]]:
        """Every pending marker (current and legacy name; one per batch), sorted by batch id."""
        skip = set(exclude)
        found: dict[str, dict[str, Any]] = {}
        for prefix in self.layout.ledger_pending_prefixes:
            for marker in self._documents(prefix):
                if marker.get("batch_id") and marker["batch_id"] not in skip:
                    found.setdefault(marker["batch_id"], marker)
        return [found[batch_id] for batch_id in sorted(found)]

    # -- open markers: submitted batches with jobs not yet final (reconcile's index) -----------------
    def mark_open(self, entry: LedgerEntry, final: dict[str, str] | None = None) -> None:
        marker: dict[str, Any] = {
            "batch_id": entry.batch_id, "regulation": entry.regulation, "jobs": len(entry.jobs),
            "submitted_at": entry.submitted_at.isoformat() if entry.submitted_at else None,
        }
        if final:
            marker["final"] = final
        self.store.put_json(self.layout.ledger_open(entry.batch_id), marker)

    def update_open(self, marker: dict[str, Any], final: dict[str, str]) -> None:
        self.store.put_json(self.layout.ledger_open(marker["batch_id"]), {**marker, "final": final})

    def close(self, batch_id: str, final: dict[str, str]) -> None:
        """Every job of the batch is final: the closed marker first, then the open marker goes."""
        self.store.put_json(self.layout.ledger_closed(batch_id), {"batch_id": batch_id, "final": final})
        self.store.delete(self.layout.ledger_open(batch_id))

    def lost_batch_ids(self) -> list[str]:
        """Batches with a ledger entry in no index (open, closed, pending): a crash between two writes.

        Costs list calls only (one per 1000 keys of each index), no reads.
        """
        indexed: set[str] = set()
        for prefix in (self.layout.ledger_open_prefix, self.layout.ledger_closed_prefix,
                       *self.layout.ledger_pending_prefixes):
            indexed |= set(self._ids(prefix))
        return sorted(set(self._ids(self.layout.ledger_batches_prefix)) - indexed)

    def open_markers(self) -> dict[str, dict[str, Any]]:
        return {marker["batch_id"]: marker for marker in self._documents(self.layout.ledger_open_prefix)
                if marker.get("batch_id")}

    def open_batches(self, cache: LedgerReadCache | None = None,
                     ) -> tuple[dict[str, dict[str, Any]], dict[str, LedgerEntry]]:
        """Every open marker and its batch's entry, by batch id (reconcile's input).

        With `cache`, an unchanged batch costs no read: the ETags of a listing of the open markers and of
        the entries (the one `lost_batch_ids` made, when it ran on this object) say whether the cached
        version is current. Only new or changed documents are read.
        :raises RuntimeError: an open marker whose entry is missing.
        """
        from privacy_pipeline.ledger import LedgerEntry

        listed = self._etags(self.layout.ledger_open_prefix)
        entry_etags: dict[str, str] = {}
        if cache is not None:
            entry_etags = self._listings.pop(self.layout.ledger_batches_prefix, {}) or self._etags(
                self.layout.ledger_batches_prefix)
        markers: dict[str, dict[str, Any]] = {}
        for key, etag in sorted(listed.items()):
            marker = cache.get(key, etag) if cache is not None else None
            if marker is None:
                marker, read_etag = self.store.get_json_versioned(key)
                if marker is None:
                    continue  # closed since the listing
                if cache is not None and read_etag is not None:
                    cache.put(key, read_etag, marker)
            if marker.get("batch_id"):
                markers[marker["batch_id"]] = marker
        entries: dict[str, LedgerEntry] = {}
        for batch_id in sorted(markers):
            key = self.layout.ledger_batch(batch_id)
            version = entry_etags.get(key)
            document = cache.get(key, version) if cache is not None and version else None
            if document is None:
                document, read_etag = self.store.get_json_versioned(key)
                if document is None:
                    raise RuntimeError(f"ledger entry for batch {batch_id} is missing")
                if cache is not None and read_etag is not None:
                    cache.put(key, read_etag, document)
            entries[batch_id] = LedgerEntry.from_json(document)
        if cache is not None:
            cache.keep({*listed, *(self.layout.ledger_batch(batch_id) for batch_id in markers)})
        return markers, entries

    # -- inputs taken in (by content hash) -----------------------------------------------------------
    def input_taken(self, sha256: str) -> dict[str, Any] | None:
        return self.store.get_json(self.layout.ledger_input(sha256))

    def mark_input(self, source: dict[str, Any], run_root: str) -> None:
        self.store.put_json(self.layout.ledger_input(source["sha256"]), {**source, "run_root": run_root})

    # -- per job: archive records and resubmissions --------------------------------------------------
    def job_record(self, job_id: str) -> dict[str, Any] | None:
        return self.store.get_json(self.layout.ledger_job(job_id))

    def put_job_record(self, job_id: str, record: dict[str, Any]) -> None:
        self.store.put_json(self.layout.ledger_job(job_id), record)

    def resubmit_record(self, job_id: str) -> dict[str, Any] | None:
        return self.store.get_json(self.layout.ledger_resubmit(job_id))

    def put_resubmit_record(self, job_id: str, record: dict[str, Any]) -> None:
        self.store.put_json(self.layout.ledger_resubmit(job_id), record)

    # -- consent payloads accepted -------------------------------------------------------------------
    def consent(self, sha256: str) -> dict[str, Any] | None:
        return self.store.get_json(self.layout.ledger_consent(sha256))

    def put_consent(self, sha256: str, marker: dict[str, Any]) -> None:
        self.store.put_json(self.layout.ledger_consent(sha256), marker)

    def _etags(self, prefix: str) -> dict[str, str]:
        """Key -> ETag of every object under `prefix` (list calls only: one per 1000 keys)."""
        pages = self.store.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.store.bucket, Prefix=prefix.rstrip("/") + "/")
        return {item["Key"]: item["ETag"] for page in pages for item in page.get("Contents", [])}

    def _ids(self, prefix: str) -> list[str]:
        self._listings[prefix] = listing = self._etags(prefix)
        return [key.rsplit("/", 1)[-1].removesuffix(".json") for key in listing]

    def _documents(self, prefix: str) -> Iterator[dict[str, Any]]:
        for key in sorted(self.store.list_keys(prefix) or []):
            document = self.store.get_json(key)
            if document:
                yield document


class LedgerReadCache:
    """Ledger documents a worker has read, by S3 key and version, in a private folder on its disk.

    Only a shortcut: a document is served only for the exact version asked for (its ETag in a fresh
    listing), so a miss, a wiped folder or another worker's empty cache only means a read. Holds ledger facts (job ids, request keys), never
    identity values; files are readable by this user only. `keep` drops what is no longer needed.

    :param directory: the folder (created 0700); one per archive root.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.directory.chmod(0o700)

    @classmethod
    def for_store(cls, store: PrivacyArchiveStore) -> LedgerReadCache:
        """The default folder of an archive root: under the system's temporary folder, per user and root."""
        import tempfile

        root = hashlib.sha256(f"{store.bucket}/{store.prefix}".encode()).hexdigest()[:16]
        return cls(Path(tempfile.gettempdir()) / f"privacy-ledger-cache-{os.getuid()}" / root)

    def _path(self, key: str) -> Path:
        return self.directory / f"{hashlib.sha256(key.encode()).hexdigest()}.json"

    def get(self, key: str, version: str) -> dict[str, Any] | None:
        try:
            cached = json.loads(self._path(key).read_bytes())
        except (OSError, ValueError):
            return None
        if not isinstance(cached, dict) or cached.get("key") != key or cached.get("version") != version:
            return None
        document = cached.get("document")
        return document if isinstance(document, dict) else None

    def put(self, key: str, version: str, document: dict[str, Any]) -> None:
        path = self._path(key)
        partial = path.with_suffix(f".{os.getpid()}.partial")
        try:
            descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(json.dumps({"key": key, "version": version, "document": document}).encode())
            os.replace(partial, path)
        except OSError:  # a full or read-only disk: the next run reads S3 again
            partial.unlink(missing_ok=True)

    def keep(self, keys: Iterable[str]) -> None:
        """Remove every cached document but those of `keys`."""
        wanted = {self._path(key).name for key in keys}
        for path in self.directory.glob("*.json"):
            if path.name not in wanted:
                path.unlink(missing_ok=True)
