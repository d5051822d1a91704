"""The ledger in S3, typed: every read and write of `<root>/ledger/` goes through `PrivacyLedger`.

`privacy_pipeline.ledger` holds the rules (entries, transitions, recovery); this class only knows where
each document lives (`privacy_pipeline.layout`) and turns JSON into types and back. Readers tolerate
both names of a renamed marker (`pending/`, formerly `deferred/`); writers use the current one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
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

    def _ids(self, prefix: str) -> list[str]:
        return [key.rsplit("/", 1)[-1].removesuffix(".json") for key in self.store.list_keys(prefix) or []]

    def _documents(self, prefix: str) -> Iterator[dict[str, Any]]:
        for key in sorted(self.store.list_keys(prefix) or []):
            document = self.store.get_json(key)
            if document:
                yield document
