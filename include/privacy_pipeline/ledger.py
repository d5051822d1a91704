"""The exactly-once submission ledger: one entry per batch, stored by the caller (S3).

Protocol, per batch:
1. write an `intent` entry (which (key, action) pairs are about to be posted, and when);
2. POST /jobs;
3. write the entry again as `submitted`, with the job ids.

A retry reads the entry first. `submitted`: nothing to do. `intent`: the POST may or may not have
happened (a crash, a dropped response), so `recover_jobs` looks the pairs up in the list endpoint's
jobs created since the intent, and only the pairs still missing are posted again. Adobe offers no
idempotency key (reference 12.3), so this matching on userKey + action + createdDate is the only way.
`postponed` marks a batch that got no POST in this run (Adobe's back-pressure: 429, 1030-400, the
daily cap; or our own daily budget): a later run carries it. Entries written before this word existed
say `deferred`; they are read as `postponed`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

from privacy_pipeline.batching import Batch

log = logging.getLogger(__name__)

LedgerState = Literal["intent", "submitted", "postponed"]
STATES: tuple[LedgerState, ...] = ("intent", "submitted", "postponed")
#: Older names of a state, read as the current one.
_LEGACY_STATES = {"deferred": "postponed"}
LEDGER_FORMAT_VERSION = 1

#: Adobe's list dates have minutes only ("04/12/2024 04:08 PM GMT"), and our clock and Adobe's differ
#: a little: a job counts as ours when created no earlier than one minute before the intent's minute.
MATCH_MARGIN = timedelta(minutes=1)
ADOBE_DATE_FORMAT = "%m/%d/%Y %I:%M %p GMT"


@dataclass(frozen=True, slots=True)
class JobRef:
    job_id: str
    user_key: str
    action: str


class Recovery(tuple):
    """`(found, missing)` from `recover_jobs`, with `.duplicates`: job ids of extra jobs for one pair."""

    duplicates: list[str]

    def __new__(cls, found: list[JobRef], missing: list[tuple[str, str]], duplicates: list[str]):
        self = super().__new__(cls, (found, missing))
        self.duplicates = duplicates
        return self

    @property
    def found(self) -> list[JobRef]:
        return self[0]

    @property
    def missing(self) -> list[tuple[str, str]]:
        return self[1]


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    batch_id: str
    regulation: str
    user_actions: list[tuple[str, str]]
    state: LedgerState
    jobs: list[JobRef] = field(default_factory=list)
    intent_at: datetime | None = None
    submitted_at: datetime | None = None
    attempts: int = 0
    batch_key: str | None = None
    reason: str | None = None
    #: POST /jobs requests sent for this batch, by Airflow run id: written before each one goes out, so a
    #: run's report counts the POSTs of every try of its tasks, not just the last try's.
    posts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"unknown ledger state {self.state!r}")

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def intent_for(cls, batch: Batch, *, now: datetime, batch_key: str | None = None,
                   previous: LedgerEntry | None = None) -> LedgerEntry:
        """The entry to write right before the first POST of `batch` (attempts continue a postponed entry)."""
        return replace(cls._of(batch, "intent", now, batch_key),
                       attempts=(previous.attempts if previous else 0) + 1,
                       posts=dict(previous.posts) if previous else {})

    @classmethod
    def postponed_for(cls, batch: Batch, *, now: datetime, reason: str, batch_key: str | None = None) -> LedgerEntry:
        """A batch carried to a later run without any POST (`intent_at` records when it was postponed)."""
        return replace(cls._of(batch, "postponed", now, batch_key), reason=reason)

    @classmethod
    def _of(cls, batch: Batch, state: LedgerState, now: datetime, batch_key: str | None) -> LedgerEntry:
        return cls(batch_id=batch.batch_id, regulation=batch.shape.regulation, user_actions=batch.user_actions,
                   state=state, intent_at=_aware(now), batch_key=batch_key)

    # -- transitions (entries are immutable: each returns a new one) ------------------------------
    def with_attempt(self, *, now: datetime) -> LedgerEntry:
        """Another POST is about to go out for the pairs still missing; the intent time stays."""
        return replace(self, attempts=self.attempts + 1, intent_at=self.intent_at or _aware(now))

    def with_post(self, run_id: str) -> LedgerEntry:
        """One more POST is about to be sent for this batch by run `run_id`."""
        return replace(self, posts={**self.posts, run_id: self.posts.get(run_id, 0) + 1})

    def with_jobs(self, created: Iterable[Any], *, now: datetime) -> LedgerEntry:
        """Add the jobs a POST returned (job refs, `CreatedJob`s or Adobe job dicts).

        The entry becomes `submitted` once every (key, action) pair has a job.
        """
        return self._merged([_as_job_ref(job) for job in created], now)

    def with_recovered(self, found: Iterable[JobRef], missing: Iterable[tuple[str, str]], *,
                       now: datetime) -> LedgerEntry:
        """Add what `recover_jobs` found; `submitted` only when no pair is missing any more.

        `missing` is accepted for symmetry with `recover_jobs`; the entry works it out itself.
        """
        del missing
        return self._merged(list(found), now)

    def _merged(self, new_jobs: list[JobRef], now: datetime) -> LedgerEntry:
        wanted = {tuple(pair) for pair in self.user_actions}
        jobs = {(job.user_key, job.action): job for job in self.jobs}
        for job in new_jobs:
            pair = (job.user_key, job.action)
            if pair not in wanted:
                raise ValueError(f"job {job.job_id} is for a (key, action) pair this batch did not send")
            jobs.setdefault(pair, job)
        complete = wanted <= set(jobs)
        return replace(
            self,
            jobs=list(jobs.values()),
            state="submitted" if complete else self.state,
            submitted_at=(self.submitted_at or _aware(now)) if complete else self.submitted_at,
            reason=None if complete else self.reason,
        )

    @property
    def missing(self) -> list[tuple[str, str]]:
        """(key, action) pairs with no known job yet."""
        have = {(job.user_key, job.action) for job in self.jobs}
        return [(key, action) for key, action in self.user_actions if (key, action) not in have]

    # -- JSON --------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "version": LEDGER_FORMAT_VERSION,
            "batch_id": self.batch_id,
            "regulation": self.regulation,
            "user_actions": [list(pair) for pair in self.user_actions],
            "state": self.state,
            "jobs": [{"job_id": j.job_id, "user_key": j.user_key, "action": j.action} for j in self.jobs],
            "intent_at": _iso(self.intent_at),
            "submitted_at": _iso(self.submitted_at),
            "attempts": self.attempts,
            "batch_key": self.batch_key,
            "reason": self.reason,
            "posts": dict(sorted(self.posts.items())),
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any] | str | bytes) -> LedgerEntry:
        if isinstance(document, str | bytes):
            document = json.loads(document)
        assert isinstance(document, Mapping)
        if document.get("version") != LEDGER_FORMAT_VERSION:
            raise ValueError("not a ledger entry (or an unknown version)")
        return cls(
            batch_id=document["batch_id"],
            regulation=document["regulation"],
            user_actions=[(str(key), str(action)) for key, action in document["user_actions"]],
            state=cast(LedgerState, _LEGACY_STATES.get(document["state"], document["state"])),
            jobs=[JobRef(j["job_id"], j["user_key"], j["action"]) for j in document["jobs"]],
            intent_at=_parse_iso(document.get("intent_at")),
            submitted_at=_parse_iso(document.get("submitted_at")),
            attempts=int(document.get("attempts", 0)),
            batch_key=document.get("batch_key"),
            reason=document.get("reason"),
            posts={str(run): int(n) for run, n in (document.get("posts") or {}).items()},
        )


def recover_jobs(entry: LedgerEntry, listed_jobs: Iterable[Mapping[str, Any]]) -> Recovery:
    """Find the jobs a POST of `entry` created, among the list endpoint's basic job dicts.

    A listed job matches a pair still missing from `entry` on `userKey` + `action`, created at or
    after the intent (minute precision, `MATCH_MARGIN` earlier still counts). Two jobs for one pair
    mean a POST went out twice: the earliest is kept (then the lowest jobId) and the others are
    reported in `.duplicates`. Jobs whose createdDate cannot be read are never matched.

    Returns `(found, missing)`: new `JobRef`s, and the pairs no job was found for.
    """
    if entry.intent_at is None:
        raise ValueError("entry has no intent time to match against")
    wanted = set(entry.missing)
    earliest = entry.intent_at.replace(second=0, microsecond=0) - MATCH_MARGIN
    candidates: dict[tuple[str, str], list[tuple[datetime, str]]] = {}
    unreadable = 0
    for job in listed_jobs:
        pair = (str(job.get("userKey")), str(job.get("action", "")).lower())
        if pair not in wanted:
            continue
        created = parse_adobe_date(job.get("createdDate"))
        if created is None:
            unreadable += 1
            continue
        if created >= earliest:
            candidates.setdefault(pair, []).append((created, str(job["jobId"])))
    found: list[JobRef] = []
    duplicates: list[str] = []
    for pair, jobs in candidates.items():
        jobs.sort()
        found.append(JobRef(jobs[0][1], pair[0], pair[1]))
        duplicates.extend(job_id for _, job_id in jobs[1:])
    if duplicates:
        log.warning("Batch %s: %d duplicate job(s) found for one (key, action); kept the earliest of each: %s",
                    entry.batch_id, len(duplicates), ", ".join(duplicates))
    if unreadable:
        log.warning("Batch %s: %d listed job(s) had an unreadable createdDate and were not matched",
                    entry.batch_id, unreadable)
    found_pairs = {(job.user_key, job.action) for job in found}
    missing = [pair for pair in entry.missing if pair not in found_pairs]
    return Recovery(found, missing, duplicates)


def parse_adobe_date(value: Any) -> datetime | None:
    """`"04/12/2024 04:08 PM GMT"` (or ISO-8601) -> aware UTC datetime; None when unreadable."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        return datetime.strptime(text, ADOBE_DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        pass
    try:
        return _aware(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return None


def _as_job_ref(job: Any) -> JobRef:
    if isinstance(job, JobRef):
        return job
    if isinstance(job, Mapping):
        if "customer" in job:  # POST /jobs response item
            user = job["customer"]["user"]
            actions = user.get("action") or []
            action = actions[0] if isinstance(actions, list) else actions
            return JobRef(str(job["jobId"]), str(user["key"]), str(action).lower())
        return JobRef(str(job["jobId"]), str(job["userKey"]), str(job["action"]).lower())
    return JobRef(str(job.job_id), str(job.user_key), str(job.action).lower())


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _parse_iso(text: str | None) -> datetime | None:
    return _aware(datetime.fromisoformat(text)) if text else None
