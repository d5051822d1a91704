"""Where every object of the pipeline lives under the archive root: one place, so tasks agree.

Keys are deterministic (logical date, run id, batch id, job id; never the wall clock), so a retried
task overwrites the object it wrote before instead of adding a second one.

    <root>/ledger/batches/<batch_id>.json     exactly-once ledger, one entry per batch (across runs)
    <root>/ledger/inputs/<sha256>.json        input files already taken in (by content hash)
    <root>/ledger/jobs/<job_id>.json          a job's archive record: first the intent (which run's folder
                                              its ZIP goes to), then the outcome (archived or quarantined,
                                              content key, sha256, size)
    <root>/ledger/pending/<batch_id>.json     batches staged or postponed and not yet submitted: a later
                                              run carries each one until its submit writes `open/`
                                              (`ledger/deferred/`, the older name, is still read)
    <root>/ledger/open/<batch_id>.json        batches with jobs not yet final and archived (reconcile's index)
    <root>/ledger/closed/<batch_id>.json      batches reconcile closed (every job final): written before the
                                              open marker is deleted, so a batch is always in one index
    <root>/ledger/resubmits/<job_id>.json     an errored job's resubmission (retry batch, attempt)
    <root>/ledger/budget/<day>.json           the day's job budget reservations (compare-and-swap)
    <root>/ledger/consent/<sha256>.json       opt-out payloads already accepted (202), by payload hash
    <root>/runs/<ds>/<run>/intake.json        what intake read, rejected and batched
    <root>/runs/<ds>/<run>/rejects.csv
    <root>/runs/<ds>/<run>/batches/<batch_id>.json
    <root>/runs/<ds>/<run>/content/<job_id>.zip
    <root>/runs/<ds>/<run>/quarantine/<job_id>.zip
    <root>/runs/<ds>/<run>/jobs/part-<chunk>.jsonl, jobs.jsonl, report.json
    <root>/runs/<ds>/<run>/deadlines.png, deadlines.html
    <root>/runs/<ds>/<run>/reconcile.json, opt_out.json, consent/<sha256>.json (evidence)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]+")
#: An id from the API (job id) as it may appear in a key or a file name: no separators, no `..`.
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def safe_id(value: str) -> str:
    """`value` unchanged when it is safe in a key or a file name; else ValueError (ids from the API are untrusted)."""
    if not isinstance(value, str) or not _SAFE_ID.match(value) or ".." in value:
        raise ValueError(f"refusing an id that is not safe in a path or an S3 key: {value!r}")
    return value


def safe_segment(value: str) -> str:
    """A run id such as `manual__2026-11-22T10:00:00+00:00` as one portable key segment."""
    return _UNSAFE.sub("_", value).strip("_") or "_"


@dataclass(frozen=True)
class ArchiveLayout:
    root: str  # key prefix of the archive root inside the bucket ("" for the bucket root)

    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.root.strip("/"), *parts) if p)

    def ledger_batch(self, batch_id: str) -> str:
        return self._key("ledger", "batches", f"{batch_id}.json")

    @property
    def ledger_batches_prefix(self) -> str:
        return self._key("ledger", "batches")

    def ledger_closed(self, batch_id: str) -> str:
        return self._key("ledger", "closed", f"{batch_id}.json")

    @property
    def ledger_closed_prefix(self) -> str:
        return self._key("ledger", "closed")

    def ledger_input(self, sha256: str) -> str:
        return self._key("ledger", "inputs", f"{sha256}.json")

    def ledger_pending(self, batch_id: str) -> str:
        return self._key("ledger", "pending", f"{batch_id}.json")

    def ledger_pending_legacy(self, batch_id: str) -> str:
        """Where archives written before `pending/` kept the same marker (read and cleared, never written)."""
        return self._key("ledger", "deferred", f"{batch_id}.json")

    @property
    def ledger_pending_prefixes(self) -> tuple[str, str]:
        """The current prefix first, then the legacy one."""
        return self._key("ledger", "pending"), self._key("ledger", "deferred")

    def ledger_job(self, job_id: str) -> str:
        return self._key("ledger", "jobs", f"{safe_id(job_id)}.json")

    def ledger_open(self, batch_id: str) -> str:
        return self._key("ledger", "open", f"{batch_id}.json")

    @property
    def ledger_open_prefix(self) -> str:
        return self._key("ledger", "open")

    def ledger_resubmit(self, job_id: str) -> str:
        return self._key("ledger", "resubmits", f"{safe_id(job_id)}.json")

    def ledger_budget(self, day: str) -> str:
        return self._key("ledger", "budget", f"{day}.json")

    def ledger_consent(self, sha256: str) -> str:
        return self._key("ledger", "consent", f"{sha256}.json")

    def run(self, ds: str, run_id: str) -> RunLayout:
        return RunLayout(self._key("runs", ds, safe_segment(run_id)))


@dataclass(frozen=True)
class RunLayout:
    root: str

    def _key(self, *parts: str) -> str:
        return "/".join((self.root, *parts))

    @property
    def intake(self) -> str:
        return self._key("intake.json")

    @property
    def rejects(self) -> str:
        return self._key("rejects.csv")

    @property
    def jobs(self) -> str:
        return self._key("jobs.jsonl")

    @property
    def report(self) -> str:
        return self._key("report.json")

    @property
    def jobs_parts_prefix(self) -> str:
        return self._key("jobs")

    def jobs_part(self, chunk: int) -> str:
        return self._key("jobs", f"part-{chunk:05d}.jsonl")

    @property
    def deadlines_png(self) -> str:
        return self._key("deadlines.png")

    @property
    def deadlines_html(self) -> str:
        return self._key("deadlines.html")

    @property
    def reconcile(self) -> str:
        return self._key("reconcile.json")

    @property
    def opt_out(self) -> str:
        return self._key("opt_out.json")

    def consent_evidence(self, sha256: str) -> str:
        return self._key("consent", f"{sha256}.json")

    def batch(self, batch_id: str) -> str:
        return self._key("batches", f"{batch_id}.json")

    def content(self, job_id: str) -> str:
        return self._key("content", f"{safe_id(job_id)}.zip")

    def quarantine(self, job_id: str) -> str:
        return self._key("quarantine", f"{safe_id(job_id)}.zip")
