"""Reconcile: what to do, each hour, with every job of an earlier run that is not final yet.

Adobe never re-runs a failed job, keeps access content for about 30 days, and takes 15-45 days on
real jobs. So for each job the decision is one of:

- `archive`: complete access job whose content is not archived yet -> stream it to S3 now;
- `resubmit`: errored, attempts left -> a fresh job for that subject and action (a retry batch);
- `give_up`: errored, attempt cap reached -> final, reported;
- `final`: complete (a delete, or access already archived), or cancelled (a person's decision: final,
  never resubmitted; see `privacy_pipeline.status`);
- `stuck`: processing longer than `stuck_after` (45 days) -> still open, reported;
- `open`: still submitted / processing (or missing / unknown: never taken for done).

Retry batches have deterministic ids `<content id>.r<attempt>` (the content id is `batching.batch_id_for`
over the subjects and actions resubmitted), so a reconcile retried after a crash stages the same
batch again and the submit ledger keeps it exactly once, while a later attempt is a new batch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Literal

from privacy_pipeline import status as job_status
from privacy_pipeline.batching import Batch, batch_id_for

Decision = Literal["archive", "resubmit", "give_up", "stuck", "open", "final"]
#: Adobe's list endpoint looks back 45 days and spans at most 30 per request; we stay a day inside both.
LIST_LOOKBACK_DAYS = 44
LIST_SPAN_DAYS = 29
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_STUCK_AFTER = timedelta(days=45)
DEFAULT_ARCHIVE_ALERT_AFTER = timedelta(days=7)
_RETRY_SUFFIX = re.compile(r"\.r(\d+)$")


@dataclass(frozen=True, slots=True)
class JobState:
    """What reconcile knows of one job: from the ledger (ids, action) and Adobe (status, dates)."""

    job_id: str
    user_key: str
    action: str
    status: str
    created: datetime | None = None
    modified: datetime | None = None


def decide(job: JobState, *, archived: bool, attempt: int, max_attempts: int = DEFAULT_MAX_ATTEMPTS,
           now: datetime, stuck_after: timedelta = DEFAULT_STUCK_AFTER) -> Decision:
    """The decision for one job. `attempt` is the attempt that created it (1 for the first submission)."""
    status = job_status.normalize(job.status)
    if status == job_status.COMPLETE:
        return "archive" if job.action == "access" and not archived else "final"
    if status in job_status.RESUBMITTABLE_STATUSES:
        return "resubmit" if attempt < max_attempts else "give_up"
    if job_status.is_final(status):
        return "final"
    if job.created is not None and now - job.created > stuck_after:
        return "stuck"
    return "open"


def archive_overdue(job: JobState, *, now: datetime, alert_after: timedelta = DEFAULT_ARCHIVE_ALERT_AFTER) -> bool:
    """A complete access job whose content is still not archived `alert_after` after completion.

    Adobe's content may be gone 30 days after completion, so `alert_after` must stay well inside that.
    Completion time is the job's last modification (Adobe does not change a complete job).
    """
    completed = job.modified or job.created
    return (job.status == "complete" and job.action == "access" and completed is not None
            and now - completed > alert_after)


def list_windows(since: datetime, now: datetime) -> list[tuple[date, date]]:
    """The list endpoint's date windows covering jobs created since `since` (a day earlier, for clock skew).

    Each window spans at most `LIST_SPAN_DAYS` and none starts before the look-back (`LIST_LOOKBACK_DAYS`):
    older jobs are read one by one.
    """
    start = max(since - timedelta(days=1), now - timedelta(days=LIST_LOOKBACK_DAYS)).date()
    windows = []
    while start <= now.date():
        end = min(start + timedelta(days=LIST_SPAN_DAYS), now.date())
        windows.append((start, end))
        start = end + timedelta(days=1)
    return windows


def recovery_window(intent_at: datetime) -> tuple[date, date]:
    """The list window that holds every job a POST made at `intent_at` can have created."""
    start = intent_at - timedelta(days=1)
    return start.date(), (start + timedelta(days=LIST_SPAN_DAYS)).date()


def retry_attempt(batch_id: str) -> int:
    """The attempt a batch's jobs belong to: 1 for an original batch, n for `<content id>.r<n>`."""
    match = _RETRY_SUFFIX.search(batch_id)
    return int(match.group(1)) if match else 1


def retry_batch(batch: Batch, pairs: list[tuple[str, str]]) -> Batch:
    """The next attempt's batch: `batch`'s subjects restricted to the (key, action) pairs to resubmit."""
    wanted: dict[str, set[str]] = {}
    for key, action in pairs:
        wanted.setdefault(key, set()).add(action)
    subjects = []
    for subject in batch.subjects:
        actions = tuple(a for a in subject.actions if a in wanted.get(subject.key, ()))
        if actions:
            subjects.append(replace(subject, actions=actions))
    found = {(s.key, a) for s in subjects for a in s.actions}
    if found != set(pairs):
        raise ValueError(f"batch {batch.batch_id} does not hold {len(set(pairs) - found)} of the pairs to resubmit")
    batch_id = f"{batch_id_for(batch.shape, subjects)}.r{retry_attempt(batch.batch_id) + 1}"
    return Batch(batch_id=batch_id, shape=batch.shape, subjects=tuple(subjects))
