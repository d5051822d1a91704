"""Adobe I/O Events for Privacy Service: a journal per event registration, at Adobe's URL shape.

``GET /events/organizations/{orgId}/integrations/{credentialId}/{registrationId}`` answers like
Adobe's Journaling API (AdobeDocs/adobe-io-events ``guides/api/journaling-api.md``):

- headers ``Authorization: Bearer``, ``x-api-key`` (the registration's client id) and
  ``x-ims-org-id`` (not ``x-gw-ims-org-id``), checked with the gateway's error bodies;
- ``200`` with ``{"events": [{"position", "event"}], "_page": {"last", "count"}}`` and a relative
  ``Link: <...?since=LAST>; rel="next"`` (``since`` is exclusive; ``limit`` is kept in the link);
- ``204`` with ``retry-after`` plus ``rel="next"`` (the same position) and ``rel="validate"`` links at
  the end of the journal; ``latest=true`` jumps to the end; ``seek=-PT2H`` / ``-P5DT2H`` goes back
  in time and cannot be combined with ``since``; ``limit`` returns exactly that many when there are;
- ``410 Gone`` for a position older than the retention (7 days on the emulator clock by default).

Events are emitted on the emulator clock as jobs finish: the journal subscribes to the emulator's
final transitions (``state.final_transitions``, see ``transitions.py``); each privacy product's and
job's final state becomes a pending event, and every journal read first sweeps the feed and appends
the pending events (each job's products, then the job, in end order) with the end time as the event
``time`` and as the time it was written (what retention and ``seek`` count from). Once journaled an
event keeps its position, whatever settings change later; hygiene jobs and work orders have none.

Payload: Experience League's privacy-events page (``id``, ``event_id``, ``specversion`` 0.2,
``type`` com.adobe.platform.gdpr.{jobcomplete,joberror,productcomplete,producterror}, ``source``,
``time`` as ``Wed Oct 23 18:52:32 GMT 2019``, ``data.imsOrg``, ``data.value.jobId/message``). Where
Adobe is silent we chose: product messages ``<product>.<action>.complete|error`` like Adobe's
example, job messages ``job.<action>.complete|error``.

Faults (``PATCH /_emulator/events/config``, seeded per userKey, action and event kind, so a run
can be replayed even though job ids are random):
``duplicate_rate`` (journaled twice, the copy at the end of its sweep), ``reorder`` (each sweep's
events shuffled), ``drop_rate`` (never journaled; listed by ``GET /_emulator/events/log``),
``gone_next`` (the next N reads with ``since`` answer 410, an expired position).

The journal lives in the emulator's SQLite database (it survives a restart); a trigger on the jobs
table forgets a job's events when the job is deleted, so ``POST /_emulator/reset`` empties it too.
"""

from __future__ import annotations

import json
import random
import re
import threading
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from privacy_emulator.errors import EmulatorHTTPError, gateway_error
from privacy_emulator.gateway import apply_faults, bearer_and_api_key
from privacy_emulator.lifecycle import seeded_unit
from privacy_emulator.settings import DAY
from privacy_emulator.state import EmulatorState, State
from privacy_emulator.store import JobRecord
from privacy_emulator.transitions import FinalTransition

JOURNAL_PATH = "/events/organizations/{org_id}/integrations/{credential_id}/{registration_id}"
DEFAULT_REGISTRATION_ID = "privacy-events"
EVENT_SOURCE = "https://ns.adobe.com/platform/gdpr"
EVENT_TYPE_PREFIX = "com.adobe.platform.gdpr."
EVENT_TYPES = tuple(EVENT_TYPE_PREFIX + name for name in ("jobcomplete", "joberror", "productcomplete", "producterror"))
EVENT_TIME_FORMAT = "%a %b %d %H:%M:%S GMT %Y"
MAX_RESPONSE_BYTES = 1_500_000  # Adobe caps a journal response at 1.5 MB
_ANIMALS = ("camel", "moose", "rabbit", "penguin", "otter", "heron", "lynx", "walrus")
_POSITION = re.compile(r"^[a-z]+:[0-9a-f-]{36}:[0-9a-f-]{36}$")
_SEEK = re.compile(r"^-P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
_NAMESPACE = uuid.UUID("7d0b6f38-6a43-4a52-9f1c-2d3c5a0e8b11")

SCHEMA = """
CREATE TABLE IF NOT EXISTS journal_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    registration TEXT NOT NULL,
    position TEXT NOT NULL UNIQUE,
    written_at REAL NOT NULL,
    job_id TEXT NOT NULL,
    event_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_events_job ON journal_events (job_id);
CREATE TABLE IF NOT EXISTS journal_pending (
    event_id TEXT PRIMARY KEY, job_id TEXT NOT NULL, label TEXT NOT NULL, finished REAL NOT NULL,
    event_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_pending_job ON journal_pending (job_id);
CREATE TABLE IF NOT EXISTS journal_emitted (event_id TEXT PRIMARY KEY, job_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS journal_emitted_job ON journal_emitted (job_id);
CREATE TABLE IF NOT EXISTS journal_dropped (
    event_id TEXT PRIMARY KEY, job_id TEXT NOT NULL, type TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_dropped_job ON journal_dropped (job_id);
DROP TRIGGER IF EXISTS journal_forget_job;
CREATE TRIGGER journal_forget_job AFTER DELETE ON jobs BEGIN
    DELETE FROM journal_events WHERE job_id = OLD.job_id;
    DELETE FROM journal_pending WHERE job_id = OLD.job_id;
    DELETE FROM journal_emitted WHERE job_id = OLD.job_id;
    DELETE FROM journal_dropped WHERE job_id = OLD.job_id;
END;
"""


class Registration(BaseModel):
    """One event registration with journal delivery; org and client default to the emulator's."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    org_id: str | None = None
    client_id: str | None = None
    event_types: list[str] = Field(default_factory=lambda: list(EVENT_TYPES))


class JournalSettings(BaseModel):
    """The journal's settings and faults (kept beside ``EmulatorSettings``, changed at run time)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    registrations: list[Registration] = Field(
        default_factory=lambda: [Registration(id=DEFAULT_REGISTRATION_ID)]
    )
    retention_seconds: float = Field(default=7 * DAY, gt=0)
    retry_after_seconds: int = Field(default=10, ge=0)
    max_batch: int = Field(default=100, ge=1, description="Events per page when no limit is given.")
    duplicate_rate: float = Field(default=0.0, ge=0, le=1)
    reorder: bool = False
    drop_rate: float = Field(default=0.0, ge=0, le=1)
    gone_next: int = Field(default=0, ge=0, description="The next N reads with since answer 410.")


def adobe_event_time(epoch_seconds: float) -> str:
    """I/O Events' time format, ``Wed Oct 23 18:52:32 GMT 2019``."""
    return datetime.fromtimestamp(epoch_seconds, tz=UTC).strftime(EVENT_TIME_FORMAT)


def parse_seek(value: str) -> float:
    """``-PT2H`` / ``-P5DT2H`` / ``-PT90M`` as seconds back; ValueError for anything else."""
    match = _SEEK.match(value)
    if not match or not any(match.groups()):
        raise ValueError(f"seek must be a negative ISO-8601 duration such as -PT2H or -P5DT2H, not {value!r}")
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return days * DAY + hours * 3600.0 + minutes * 60.0 + seconds


class Journal:
    """The journals of every registration, stored in the emulator's SQLite database."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.settings = JournalSettings()
        self._lock = threading.Lock()
        self._conn = state.store._conn  # same package: the journal shares the store's connection and lock
        with state.store._lock:
            self._conn.executescript(SCHEMA)
        state.final_transitions.subscribe(self.on_transition)

    # -- registrations -------------------------------------------------------------------------------
    def registration(self, org_id: str, credential_id: str, registration_id: str) -> Registration | None:
        emulator = self.state.settings
        for registration in self.settings.registrations:
            if (
                registration.id == registration_id
                and (registration.org_id or emulator.org_id) == org_id
                and (registration.client_id or emulator.client_id) == credential_id
            ):
                return registration
        return None

    # -- emission ------------------------------------------------------------------------------------
    def on_transition(self, transition: FinalTransition) -> None:
        """Listener of ``state.final_transitions``: a privacy job's or product's final state becomes a
        pending event (durably, so a crash before the next journal read loses nothing)."""
        job = transition.job
        if getattr(job, "kind", None) != "privacy":
            return  # hygiene jobs and work orders have no documented events
        outcome = "error" if transition.status == "error" else "complete"
        if transition.product is None:
            kind, message, product = f"job{outcome}", f"job.{job.action}.{outcome}", ""
        else:
            product = str(transition.product.get("product", ""))
            kind, message = f"product{outcome}", f"{product.lower()}.{job.action}.{outcome}"
        event = self._event(job, kind, message, transition.at, product)
        # Fault draws key on what the client sent (not the random job id), so runs replay.
        label = f"{job.user_key}|{job.action}|{event['type']}|{message}"
        with self.state.store._transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO journal_pending (event_id, job_id, label, finished, event_json) "
                "VALUES (?, ?, ?, ?, ?)",
                (event["event_id"], job.job_id, label, transition.at, json.dumps(event)),
            )

    def _event(self, job: JobRecord, kind: str, message: str, finished: float, product: str) -> dict:
        label = f"{self.state.settings.seed}:{job.job_id}:{kind}:{product}"
        return {
            "id": str(uuid.uuid5(_NAMESPACE, "id:" + label)),
            "event_id": str(uuid.uuid5(_NAMESPACE, "event:" + label)),
            "specversion": "0.2",
            "type": EVENT_TYPE_PREFIX + kind,
            "source": EVENT_SOURCE,
            "time": adobe_event_time(finished),
            "data": {"imsOrg": job.org_id, "value": {"jobId": job.job_id, "message": message}},
        }

    def sweep(self) -> int:
        """Journal every pending event (the final transitions up to now), applying the faults."""
        self.state.final_transitions.sweep()
        seed = self.state.settings.seed
        written = 0
        with self._lock, self.state.store._transaction() as conn:
            pending = conn.execute(
                "SELECT p.event_id, p.job_id, p.label, p.finished, p.event_json, e.event_id AS emitted "
                "FROM journal_pending p LEFT JOIN journal_emitted e ON e.event_id = p.event_id "
                "ORDER BY p.finished, p.rowid"
            ).fetchall()
            conn.execute("DELETE FROM journal_pending")
            batch: list[tuple[float, str, dict, str]] = []
            for row in pending:
                if row["emitted"] is not None:
                    continue  # the feed delivers at least once; the journal once, unless a fault says twice
                conn.execute("INSERT INTO journal_emitted (event_id, job_id) VALUES (?, ?)", (row["event_id"], row["job_id"]))
                event = json.loads(row["event_json"])
                if seeded_unit(seed, row["label"], "drop") < self.settings.drop_rate:
                    conn.execute(
                        "INSERT OR IGNORE INTO journal_dropped (event_id, job_id, type) VALUES (?, ?, ?)",
                        (row["event_id"], row["job_id"], event["type"]),
                    )
                    continue
                batch.append((row["finished"], row["job_id"], event, row["label"]))
            if self.settings.reorder and batch:
                random.Random(f"{seed}:{len(batch)}:{batch[0][3]}").shuffle(batch)
            copies = [item for item in batch if seeded_unit(seed, item[3], "dup") < self.settings.duplicate_rate]
            for finished, job_id, event, _label in batch + copies:
                for registration in self.settings.registrations:
                    if event["type"] not in registration.event_types:
                        continue
                    cursor = conn.execute(
                        "INSERT INTO journal_events (registration, position, written_at, job_id, event_json) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (registration.id, f"pending:{uuid.uuid4()}", finished, job_id, json.dumps(event)),
                    )
                    seq = cursor.lastrowid
                    conn.execute(
                        "UPDATE journal_events SET position = ? WHERE seq = ?", (self._position(registration, seq), seq)
                    )
                    written += 1
        return written

    def _position(self, registration: Registration, seq: int) -> str:
        """Opaque like Adobe's ``animal:uuid:uuid``; looked up, never parsed, by the server."""
        seed = self.state.settings.seed
        return (
            f"{_ANIMALS[seq % len(_ANIMALS)]}:{uuid.uuid5(_NAMESPACE, f'reg:{registration.id}')}:"
            f"{uuid.uuid5(_NAMESPACE, f'{seed}:{seq}')}"
        )

    # -- reading -------------------------------------------------------------------------------------
    def _rows(self, sql: str, params: tuple) -> list:
        with self.state.store._lock:
            return self._conn.execute(sql, params).fetchall()

    def retention_cutoff(self) -> float:
        return self.state.clock.now() - self.settings.retention_seconds

    def seq_of(self, registration: Registration, position: str) -> tuple[int, float] | None:
        rows = self._rows(
            "SELECT seq, written_at FROM journal_events WHERE registration = ? AND position = ?",
            (registration.id, position),
        )
        return (rows[0]["seq"], rows[0]["written_at"]) if rows else None

    def last(self, registration: Registration) -> tuple[int, str | None]:
        rows = self._rows(
            "SELECT seq, position FROM journal_events WHERE registration = ? ORDER BY seq DESC LIMIT 1",
            (registration.id,),
        )
        return (rows[0]["seq"], rows[0]["position"]) if rows else (0, None)

    def first_seq_since(self, registration: Registration, cutoff: float) -> int:
        """The seq just before the first event written at or after ``cutoff`` (exclusive start)."""
        rows = self._rows(
            "SELECT min(seq) AS seq FROM journal_events WHERE registration = ? AND written_at >= ?",
            (registration.id, cutoff),
        )
        first = rows[0]["seq"]
        return (first - 1) if first is not None else self.last(registration)[0]

    def page(self, registration: Registration, after_seq: int, limit: int) -> list:
        rows = self._rows(
            "SELECT seq, position, event_json FROM journal_events WHERE registration = ? AND seq > ? "
            "AND written_at >= ? ORDER BY seq LIMIT ?",
            (registration.id, after_seq, self.retention_cutoff(), limit),
        )
        page, size = [], 0
        for row in rows:
            size += len(row["event_json"]) + len(row["position"]) + 40
            if page and size > MAX_RESPONSE_BYTES:
                break
            page.append(row)
        return page

    def log(self) -> dict:
        events = self._rows("SELECT registration, count(*) AS n FROM journal_events GROUP BY registration", ())
        dropped = self._rows("SELECT event_id, job_id, type FROM journal_dropped ORDER BY job_id, type", ())
        return {
            "events_per_registration": {row["registration"]: row["n"] for row in events},
            "dropped": [dict(row) for row in dropped],
        }

    def reset(self) -> None:
        with self._lock, self.state.store._transaction() as conn:
            conn.execute("DELETE FROM journal_events")
            conn.execute("DELETE FROM journal_pending")
            conn.execute("DELETE FROM journal_emitted")
            conn.execute("DELETE FROM journal_dropped")
        self.settings = JournalSettings()


_JOURNAL_LOCK = threading.Lock()


def get_journal(request: Request) -> Journal:
    """One journal per app, created on first use."""
    with _JOURNAL_LOCK:
        journal = getattr(request.app.state, "privacy_journal", None)
        if journal is None:
            journal = Journal(request.app.state.emulator)
            request.app.state.privacy_journal = journal
    return journal


JournalDep = Annotated[Journal, Depends(get_journal)]
router = APIRouter()


def check_journal_headers(request: Request, state: EmulatorState, registration_client: str) -> None:
    """Adobe I/O's checks for the journal: token, the credential's API key, ``x-ims-org-id``."""
    record, api_key = bearer_and_api_key(request, state)
    if api_key != registration_client or record["client_id"] != registration_client:
        raise gateway_error(403, "403003", "Api Key is invalid")
    org_id = request.headers.get("x-ims-org-id")
    if not org_id:
        raise gateway_error(400, "400003", "Missing header x-ims-org-id")
    if org_id != record["org_id"]:
        raise gateway_error(403, "403025", "Profile is not valid")


def _gone(position: str) -> Response:
    return Response(f"Events at position {position} have expired.", status_code=410, media_type="text/plain")


def _link(base: str, params: dict[str, Any], rel: str) -> str:
    query = urlencode({key: value for key, value in params.items() if value is not None}, safe=":")
    return f"<{base}{'?' + query if query else ''}>; rel=\"{rel}\""


def _resolve(journal: Journal, request: Request, org_id: str, credential_id: str, registration_id: str) -> Registration:
    registration = journal.registration(org_id, credential_id, registration_id)
    client_id = (registration.client_id or journal.state.settings.client_id) if registration else credential_id
    check_journal_headers(request, journal.state, client_id)
    if registration is None:
        raise EmulatorHTTPError(404, {"error_code": "404", "message": "Registration not found"})
    return registration


@router.get(JOURNAL_PATH, tags=["I/O Events journal"], dependencies=[Depends(apply_faults)])
async def read_journal(
    org_id: str,
    credential_id: str,
    registration_id: str,
    request: Request,
    journal: JournalDep,
    since: Annotated[str | None, Query()] = None,
    limit: Annotated[int | None, Query(gt=0)] = None,
    latest: Annotated[bool, Query()] = False,
    seek: Annotated[str | None, Query()] = None,
) -> Response:
    """A batch of events of one registration's journal (Adobe's Journaling API)."""
    registration = _resolve(journal, request, org_id, credential_id, registration_id)
    if since is not None and seek is not None:
        raise EmulatorHTTPError(400, {"error_code": "400", "message": "seek cannot be combined with since"})
    journal.sweep()
    now = journal.state.clock.now()
    if since is not None:
        if not _POSITION.match(since):
            raise EmulatorHTTPError(400, {"error_code": "400", "message": "since is not a journal position"})
        found = journal.seq_of(registration, since)
        if journal.settings.gone_next > 0:
            journal.settings.gone_next -= 1
            return _gone(since)
        if found is None or found[1] < journal.retention_cutoff():
            return _gone(since)
        after_seq = found[0]
    elif seek is not None:
        try:
            back = parse_seek(seek)
        except ValueError as err:
            raise EmulatorHTTPError(400, {"error_code": "400", "message": str(err)}) from None
        after_seq = journal.first_seq_since(registration, max(now - back, journal.retention_cutoff()))
    elif latest:
        after_seq = journal.last(registration)[0]
    else:
        after_seq = 0
    rows = journal.page(registration, after_seq, limit or journal.settings.max_batch)
    base = request.url.path
    if rows:
        last = rows[-1]["position"]
        body = {
            "events": [{"position": row["position"], "event": json.loads(row["event_json"])} for row in rows],
            "_page": {"last": last, "count": len(rows)},
        }
        return Response(
            json.dumps(body), media_type="application/json",
            headers={"Link": _link(base, {"since": last, "limit": limit}, "next")},
        )
    position = since if since is not None else journal.last(registration)[1]
    found = journal.seq_of(registration, position) if position else None
    if found is not None and found[1] < journal.retention_cutoff():
        position = None  # the end itself expired: the next read starts at the oldest available event
    response = Response(status_code=204, headers={"retry-after": str(journal.settings.retry_after_seconds)})
    response.headers.append("Link", _link(base, {"since": position, "limit": limit}, "next"))
    response.headers.append("Link", _link(base + "/validate", {"since": position}, "validate"))
    return response


@router.get(JOURNAL_PATH + "/validate", tags=["I/O Events journal"])
async def validate_position(
    org_id: str, credential_id: str, registration_id: str, request: Request, journal: JournalDep,
    since: Annotated[str | None, Query()] = None,
) -> Response:
    """Whether a position can still be read from: 204 when it can, 410 when it expired."""
    registration = _resolve(journal, request, org_id, credential_id, registration_id)
    if since is None:
        return Response(status_code=204)
    if not _POSITION.match(since):
        raise EmulatorHTTPError(400, {"error_code": "400", "message": "since is not a journal position"})
    found = journal.seq_of(registration, since)
    if found is None or found[1] < journal.retention_cutoff():
        return _gone(since)
    return Response(status_code=204)


# -- the journal's admin surface (no auth, like the rest of /_emulator) ------------------------------
@router.get("/_emulator/events/config", tags=["Emulator admin"])
async def get_journal_config(journal: JournalDep) -> dict:
    return journal.settings.model_dump(mode="json")


@router.patch("/_emulator/events/config", tags=["Emulator admin"])
async def patch_journal_config(changes: Annotated[dict[str, Any], Body()], journal: JournalDep) -> dict:
    """Change registrations, retention or faults; validated as a whole (400 when invalid)."""
    try:
        journal.settings = JournalSettings.model_validate({**journal.settings.model_dump(), **changes})
    except ValidationError as exc:
        raise EmulatorHTTPError(
            400, {"error_code": "EMULATOR-400", "message": "invalid journal settings",
                  "errors": exc.errors(include_url=False, include_context=False)},
        ) from None
    return journal.settings.model_dump(mode="json")


@router.get("/_emulator/events/log", tags=["Emulator admin"])
async def journal_log(journal: JournalDep, state: State) -> dict:
    """Events journaled per registration and the events dropped by the fault (the tests' oracle)."""
    journal.sweep()
    return journal.log()


@router.post("/_emulator/events/reset", tags=["Emulator admin"])
async def reset_journal(journal: JournalDep) -> dict:
    journal.reset()
    return {"status": "reset"}
