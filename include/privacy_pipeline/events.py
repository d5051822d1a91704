"""Privacy Service events from Adobe's I/O Events journal: parsing, dedupe, positions, waiting. No I/O.

Events are hints, never the truth: they say *when* to look at a job, and our read of Adobe (the list
endpoint, or the job detail the archive reads anyway) says what its status is. Delivery is at least
once and unordered, an event can be missing, and a journal position expires after 7 days, so:

- :func:`parse_journal_entry` turns one ``{"position", "event"}`` entry into a :class:`JobEvent`, or
  ``None`` for an event type that is not Privacy Service's, or raises :class:`MalformedEvent`;
- :class:`EventDeduper` drops an event id already seen (a duplicate delivery);
- :class:`JournalRecord` is one page read from the journal as recorded in our ledger (append-only,
  numbered by our own ``seq``), :class:`JournalPosition` the recorded position, :class:`EventKeys`
  their S3 keys; a :class:`Gap` in a record says events may be missing and the list endpoint must be
  asked about every job still open;
- :class:`WaitProgress` is what a wait on a set of jobs knows: which had a final event, which passed
  their fallback time with none (ask the list endpoint), and whether a gap makes every open job due.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

EVENT_TYPE_PREFIX = "com.adobe.platform.gdpr."
#: event type -> (scope, outcome); product events are progress, job events say the job is final.
EVENT_TYPES: dict[str, tuple[str, str]] = {
    EVENT_TYPE_PREFIX + "jobcomplete": ("job", "complete"),
    EVENT_TYPE_PREFIX + "joberror": ("job", "error"),
    EVENT_TYPE_PREFIX + "productcomplete": ("product", "complete"),
    EVENT_TYPE_PREFIX + "producterror": ("product", "error"),
}
EVENT_TIME_FORMAT = "%a %b %d %H:%M:%S GMT %Y"
DEFAULT_REGISTRATION_ID = "privacy-events"
DEFAULT_DEDUPE_CAPACITY = 200_000
RECORD_DIGITS = 12


class MalformedEvent(ValueError):
    """A journal entry we cannot read; the message names the position and the field, never values."""


def parse_event_time(text: Any) -> datetime | None:
    """``Wed Oct 23 18:52:32 GMT 2019`` (I/O Events) or ISO-8601 as an aware datetime, else None."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        return datetime.strptime(text.strip(), EVENT_TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class JobEvent:
    """One Privacy Service event: what happened to which job, and where it sat in the journal."""

    event_id: str
    type: str
    job_id: str
    scope: str  # "job" or "product"
    outcome: str  # "complete" or "error"
    message: str | None
    time: str | None  # ISO-8601 UTC, None when the event's time could not be read
    position: str

    @property
    def is_final(self) -> bool:
        """A job-level event: Adobe says the job is complete or in error (still only a hint)."""
        return self.scope == "job"

    def to_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id, "type": self.type, "job_id": self.job_id, "scope": self.scope,
            "outcome": self.outcome, "message": self.message, "time": self.time, "position": self.position,
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> JobEvent:
        fields: dict[str, Any] = {name: document.get(name) for name in cls.__dataclass_fields__}
        return cls(**fields)


def parse_journal_entry(entry: Any) -> JobEvent | None:
    """One ``{"position", "event"}`` entry; None for another provider's event type.

    Accepts the documented 0.2 payload and a CloudEvents 1.0 wrapping of the same ``data``.

    :raises MalformedEvent: no position, no event id, or a Privacy Service type without ``jobId``.
    """
    if not isinstance(entry, Mapping) or not isinstance(entry.get("position"), str) or not entry["position"]:
        raise MalformedEvent("journal entry has no position")
    position = entry["position"]
    event = entry.get("event")
    if not isinstance(event, Mapping):
        raise MalformedEvent(f"entry at position {position}: field 'event' is not an object")
    event_type = event.get("type")
    if event_type not in EVENT_TYPES:
        return None
    event_id = event.get("event_id") or event.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise MalformedEvent(f"entry at position {position}: field 'event_id' is missing")
    data = event.get("data")
    value = data.get("value") if isinstance(data, Mapping) else None
    job_id = value.get("jobId") if isinstance(value, Mapping) else None
    if not isinstance(job_id, str) or not job_id:
        raise MalformedEvent(f"entry at position {position}: field 'data.value.jobId' is missing")
    message = value.get("message") if isinstance(value, Mapping) else None
    moment = parse_event_time(event.get("time"))
    scope, outcome = EVENT_TYPES[event_type]
    return JobEvent(
        event_id=event_id, type=event_type, job_id=job_id, scope=scope, outcome=outcome,
        message=str(message) if message is not None else None,
        time=moment.isoformat() if moment else None, position=position,
    )


def parse_link_header(values: Iterable[str]) -> dict[str, str]:
    """``<url>; rel="next"`` values (one header or several, comma-joined or not) -> {rel: url}."""
    links: dict[str, str] = {}
    for value in values:
        for part in value.split(","):
            target, _, params = part.strip().partition(";")
            target = target.strip()
            if not (target.startswith("<") and target.endswith(">")):
                continue
            for param in params.split(";"):
                name, _, rel = param.strip().partition("=")
                if name.strip().lower() == "rel":
                    for each in rel.strip().strip('"').split():
                        links[each] = target[1:-1]
    return links


def format_seek(seconds: float) -> str:
    """Seconds back as the journal's ``seek`` value: 7200 -> ``-PT2H``, 6.5 days -> ``-P6DT12H``."""
    total = max(1, int(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    time_part = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M"), (secs, "S")) if n)
    return "-P" + (f"{days}D" if days else "") + (f"T{time_part}" if time_part else "")


class EventDeduper:
    """Event ids already seen, oldest forgotten first beyond ``capacity`` (at-least-once delivery)."""

    def __init__(self, capacity: int = DEFAULT_DEDUPE_CAPACITY, seen: Iterable[str] = ()) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[str, None] = OrderedDict()
        for event_id in seen:
            self.add(event_id)

    def add(self, event_id: str) -> bool:
        """True when ``event_id`` is new."""
        if event_id in self._seen:
            return False
        self._seen[event_id] = None
        while len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        return True

    def recent(self, count: int) -> list[str]:
        return list(self._seen)[-count:] if count > 0 else []


@dataclass(frozen=True)
class Gap:
    """Events may be missing: the journal lost our position (410) or a read skipped ahead.

    Every job still open when a gap is recorded must be checked on the list endpoint.
    """

    reason: str
    lost_position: str | None
    since: str | None  # ISO time of the last event recorded before the gap, when known
    resumed_with: str  # the query that restarted reading, e.g. "seek=-P6DT23H"

    def to_json(self) -> dict[str, Any]:
        return {"reason": self.reason, "lost_position": self.lost_position, "since": self.since,
                "resumed_with": self.resumed_with}


@dataclass(frozen=True)
class JournalRecord:
    """One page of the journal as recorded in our ledger; ``seq`` is ours (1, 2, ...), never reused."""

    seq: int
    since: str | None
    last: str | None
    recorded_at: str
    events: tuple[JobEvent, ...] = ()
    duplicates: int = 0
    ignored_types: int = 0
    malformed: tuple[str, ...] = ()  # problems (position + field), the raw entries are not kept
    gap: Gap | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq, "since": self.since, "last": self.last, "recorded_at": self.recorded_at,
            "events": [event.to_json() for event in self.events], "duplicates": self.duplicates,
            "ignored_types": self.ignored_types, "malformed": list(self.malformed),
            "gap": self.gap.to_json() if self.gap else None,
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> JournalRecord:
        gap = document.get("gap")
        return cls(
            seq=int(document["seq"]), since=document.get("since"), last=document.get("last"),
            recorded_at=document["recorded_at"],
            events=tuple(JobEvent.from_json(event) for event in document.get("events", [])),
            duplicates=int(document.get("duplicates", 0)), ignored_types=int(document.get("ignored_types", 0)),
            malformed=tuple(document.get("malformed", [])), gap=Gap(**gap) if gap else None,
        )


@dataclass(frozen=True)
class JournalPosition:
    """Where the recorder stands: the journal position after record ``seq`` (0 = nothing read yet)."""

    seq: int = 0
    position: str | None = None
    last_event_time: str | None = None
    recent_event_ids: tuple[str, ...] = ()  # the dedupe window carried across recorder restarts

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "position": self.position, "last_event_time": self.last_event_time,
                "recent_event_ids": list(self.recent_event_ids)}

    @classmethod
    def from_json(cls, document: Mapping[str, Any] | None) -> JournalPosition:
        if not document:
            return cls()
        return cls(seq=int(document.get("seq", 0)), position=document.get("position"),
                   last_event_time=document.get("last_event_time"),
                   recent_event_ids=tuple(document.get("recent_event_ids", [])))

    def after(self, record: JournalRecord, *, recent_event_ids: Iterable[str]) -> JournalPosition:
        times = [event.time for event in record.events if event.time]
        return JournalPosition(
            seq=record.seq, position=record.last or self.position,
            last_event_time=max([*times, *([self.last_event_time] if self.last_event_time else [])], default=None),
            recent_event_ids=tuple(recent_event_ids),
        )


@dataclass(frozen=True)
class EventKeys:
    """Where a registration's recorded journal lives under the archive root."""

    root: str
    registration_id: str = DEFAULT_REGISTRATION_ID

    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.root.strip("/"), "ledger", "events", self.registration_id, *parts) if p)

    @property
    def position(self) -> str:
        return self._key("position.json")

    @property
    def records_prefix(self) -> str:
        return self._key("records") + "/"

    def record(self, seq: int) -> str:
        return self._key("records", f"{seq:0{RECORD_DIGITS}d}.json")

    def consumer(self, name: str) -> str:
        """A reader's own seq over the records (``consumers/reconcile.json``)."""
        return self._key("consumers", f"{name}.json")

    def wait(self, name: str) -> str:
        """A wait's open jobs and fallback times (``waits/<name>.json``), too many for a trigger's kwargs."""
        return self._key("waits", f"{name}.json")

    def seq_of(self, key: str) -> int | None:
        name = key.rsplit("/", 1)[-1]
        stem = name.removesuffix(".json")
        return int(stem) if key.startswith(self.records_prefix) and stem.isdigit() else None


def final_outcomes(events: Iterable[JobEvent]) -> dict[str, str]:
    """job id -> "complete" / "error" from job-level events (an error event wins over a complete one)."""
    outcomes: dict[str, str] = {}
    for event in events:
        if event.is_final and outcomes.get(event.job_id) != "error":
            outcomes[event.job_id] = event.outcome
    return outcomes


def route_events(
    events: Iterable[JobEvent], subject_by_job: Mapping[str, str]
) -> tuple[dict[str, list[JobEvent]], list[JobEvent]]:
    """Events per subject (through the ledger's job -> subject map), and the events of unknown jobs.

    Unknown jobs belong to another run, another DAG or another tool on the same org: they are kept
    (they stay in the recorded journal for whoever owns them), never dropped here.
    """
    routed: dict[str, list[JobEvent]] = {}
    unknown: list[JobEvent] = []
    for event in events:
        subject = subject_by_job.get(event.job_id)
        if subject is None:
            unknown.append(event)
        else:
            routed.setdefault(subject, []).append(event)
    return routed, unknown


@dataclass
class WaitProgress:
    """A wait on a set of jobs, fed with recorded records in ``seq`` order.

    ``fallback_at`` maps a job id to the epoch time after which, with no final event, the caller
    must ask the list endpoint; ``default_fallback_at`` covers jobs not in the map.
    """

    job_ids: frozenset[str]
    default_fallback_at: float
    fallback_at: Mapping[str, float] = field(default_factory=dict)
    outcomes: dict[str, str] = field(default_factory=dict)
    last_seq: int = 0
    gap: Gap | None = None
    events_seen: int = 0
    foreign_events: int = 0

    def observe(self, record: JournalRecord) -> None:
        if record.seq <= self.last_seq:
            return  # a record read twice (a restarted trigger, an overlapping listing)
        self.last_seq = record.seq
        if record.gap is not None and self.gap is None:
            self.gap = record.gap
        for job_id, outcome in final_outcomes(record.events).items():
            if job_id in self.job_ids:
                if self.outcomes.get(job_id) != "error":
                    self.outcomes[job_id] = outcome
            else:
                self.foreign_events += 1
        self.events_seen += len(record.events)

    def pending(self) -> list[str]:
        return sorted(self.job_ids - self.outcomes.keys())

    def due(self, now: float) -> list[str]:
        """Jobs with no final event whose fallback time has passed (all open jobs after a gap)."""
        if self.gap is not None:
            return self.pending()
        return [job for job in self.pending() if self.fallback_at.get(job, self.default_fallback_at) <= now]

    def next_fallback(self) -> float | None:
        times = [self.fallback_at.get(job, self.default_fallback_at) for job in self.pending()]
        return min(times, default=None)

    def decide(self, now: float) -> dict[str, Any] | None:
        """The trigger's event when the wait is over, else None.

        Over when every job had a final event (``events``), or when some job is due for the list
        endpoint (``fallback``; ``gap`` when a recorded gap made every open job due).
        """
        due = self.due(now)
        if self.pending() and not due:
            return None
        status = "gap" if self.gap is not None and due else ("fallback" if due else "events")
        return {
            "status": status,
            "complete_job_ids": sorted(job for job, outcome in self.outcomes.items() if outcome == "complete"),
            "error_job_ids": sorted(job for job, outcome in self.outcomes.items() if outcome == "error"),
            "timed_out_job_ids": due,
            "pending_job_ids": sorted(set(self.pending()) - set(due)),
            "last_seq": self.last_seq,
            "gap": self.gap.to_json() if self.gap else None,
        }


@dataclass
class WaitState:
    """An event-driven wait on many jobs, kept in the ledger between two deferrals.

    ``open`` maps each job still without a confirmed final status to its regulation (the list endpoint
    is asked per regulation); ``fallback_at`` its epoch time for the list endpoint; ``settled`` the
    status known for every other job (from the list endpoint, or a final event). ``since_seq`` is the
    last record already read; ``end_at`` the wait's deadline (epoch).
    """

    open: dict[str, str]
    fallback_at: dict[str, float]
    settled: dict[str, str]
    since_seq: int
    end_at: float
    rounds: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"open": dict(sorted(self.open.items())), "fallback_at": dict(sorted(self.fallback_at.items())),
                "settled": dict(sorted(self.settled.items())), "since_seq": self.since_seq,
                "end_at": self.end_at, "rounds": self.rounds}

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> WaitState:
        return cls(open=dict(document["open"]), fallback_at={k: float(v) for k, v in document["fallback_at"].items()},
                   settled=dict(document["settled"]), since_seq=int(document["since_seq"]),
                   end_at=float(document["end_at"]), rounds=int(document.get("rounds", 0)))

    def progress(self) -> WaitProgress:
        """A :class:`WaitProgress` over the open jobs, from ``since_seq`` (replays give the same answer)."""
        return WaitProgress(job_ids=frozenset(self.open), default_fallback_at=self.end_at,
                            fallback_at=self.fallback_at, last_seq=self.since_seq)

    def settle(self, statuses: Mapping[str, str]) -> None:
        """Record the statuses of jobs now final (events or the list endpoint): they leave ``open``."""
        for job_id, status in statuses.items():
            if job_id in self.open:
                del self.open[job_id]
                self.fallback_at.pop(job_id, None)
                self.settled[job_id] = status

    def postpone(self, job_ids: Iterable[str], until: float) -> None:
        """Jobs the list endpoint still shows open: their next fallback time (never past ``end_at``)."""
        for job_id in job_ids:
            if job_id in self.open:
                self.fallback_at[job_id] = min(until, self.end_at)


@dataclass(frozen=True)
class ConsumerState:
    """A reader of the recorded journal (``consumers/<name>.json``): its seq and its last full list sweep."""

    seq: int = 0
    last_sweep_at: str | None = None  # ISO-8601

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "last_sweep_at": self.last_sweep_at}

    @classmethod
    def from_json(cls, document: Mapping[str, Any] | None) -> ConsumerState:
        if not document:
            return cls()
        return cls(seq=int(document.get("seq", 0)), last_sweep_at=document.get("last_sweep_at"))


@dataclass(frozen=True)
class ReconcilePlan:
    """What a reconcile run asks Adobe: the whole list (a sweep), or the detail of jobs with a final event."""

    sweep: bool
    reason: str  # "first run", "gap", "sweep due", "many events", "events"
    detail_job_ids: tuple[str, ...] = ()
    events: int = 0


def plan_reconcile(
    open_job_ids: Iterable[str], records: Iterable[JournalRecord], consumer: ConsumerState, *,
    now: datetime, sweep_every: timedelta, detail_reads_max: int,
) -> ReconcilePlan:
    """Decide between a full list sweep and detail reads of the open jobs whose final event arrived.

    A sweep when this consumer never swept (events before it are unknown), when a record holds a gap
    (events may be missing), when the last sweep is ``sweep_every`` old (the safety net for a dropped
    event), or when more jobs had events than ``detail_reads_max`` (a list page answers for many).
    """
    wanted = set(open_job_ids)
    finals: set[str] = set()
    gap = False
    count = 0
    for record in records:
        gap = gap or record.gap is not None
        count += len(record.events)
        finals.update(job for job in final_outcomes(record.events) if job in wanted)
    last = parse_event_time(consumer.last_sweep_at)
    if last is None:
        return ReconcilePlan(True, "first run", events=count)
    if gap:
        return ReconcilePlan(True, "gap", events=count)
    if now - last >= sweep_every:
        return ReconcilePlan(True, "sweep due", events=count)
    if len(finals) > detail_reads_max:
        return ReconcilePlan(True, "many events", events=count)
    return ReconcilePlan(False, "events", tuple(sorted(finals)), events=count)
