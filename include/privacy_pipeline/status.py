"""Job statuses: one vocabulary for the wait, reconcile and the deadline report.

Adobe's job statuses are `submitted`, `processing`, `complete`, `error` and `cancelled`; we add
`missing` (a job the list endpoint did not return) and `unknown` (a status we could not read).

- final: Adobe will not change the job any more (`complete`, `error`, `cancelled`);
- failed: final without an answer (`error`, `cancelled`);
- resubmittable: failed in a way a fresh job can fix (`error`). A `cancelled` job was cancelled by a
  person on purpose: it is final and reported, never resubmitted;
- open: everything else, including `missing` and `unknown` (never treated as done).
"""

from __future__ import annotations

from collections.abc import Iterable

SUBMITTED = "submitted"
PROCESSING = "processing"
COMPLETE = "complete"
ERROR = "error"
CANCELLED = "cancelled"
MISSING = "missing"
UNKNOWN = "unknown"

FINAL_STATUSES = frozenset({COMPLETE, ERROR, CANCELLED})
FAILED_STATUSES = frozenset({ERROR, CANCELLED})
RESUBMITTABLE_STATUSES = frozenset({ERROR})

#: When a subject's jobs differ, the least finished status names the subject (deadline report).
SUBJECT_PRECEDENCE = (ERROR, CANCELLED, SUBMITTED, PROCESSING, MISSING, UNKNOWN, COMPLETE)


def normalize(status: object) -> str:
    """A status as this module spells it (lower case; `unknown` for nothing)."""
    text = str(status or "").strip().lower()
    return text or UNKNOWN


def is_final(status: object) -> bool:
    return normalize(status) in FINAL_STATUSES


def is_open(status: object) -> bool:
    return not is_final(status)


def is_failed(status: object) -> bool:
    return normalize(status) in FAILED_STATUSES


def subject_status(job_statuses: Iterable[str], *, nothing: str = "not_submitted") -> str:
    """One status for a subject from its jobs' statuses: complete only when every job is."""
    statuses = {normalize(s) for s in job_statuses}
    for status in SUBJECT_PRECEDENCE:
        if status in statuses:
            return status
    return next(iter(sorted(statuses)), nothing)
