"""Creating jobs (one per user and action) and rendering them, shared by Privacy Service and hygiene.

Ids follow the seed, so no test outcome depends on chance: a job id is ``seeded_uuid(seed, "job", n)`` and a
request id's random digits come from ``(seed, "request", n)``, where ``n`` is a persisted counter that
never goes back (not even on ``POST /_emulator/reset``). The same seed and the same calls on a fresh
database give the same ids; a restart or a reset never hands out an id twice. A *fresh* database with the same
seed does hand them out again: when the emulator's state is wiped but an archive that keys content by job
id is kept, start it with another ``--seed``.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from privacy_emulator.clock import adobe_date
from privacy_emulator.errors import aep_error
from privacy_emulator.lifecycle import (
    job_draws,
    job_status,
    last_modified_at,
    lifecycle_of,
    seeded_unit,
    seeded_uuid,
)
from privacy_emulator.listing import ListQuery
from privacy_emulator.settings import DAY
from privacy_emulator.state import EmulatorState
from privacy_emulator.store import JobRecord
from privacy_emulator.validation import ValidatedJobRequest

DAILY_LIMIT_CODE = "PRVCY-DAILY-LIMIT-400"


def new_request_id(state: EmulatorState, now: float) -> str:
    """Adobe's shape: 17 digits, ``RX-``, 3 digits (``15700479082313109RX-899``): epoch milliseconds on the
    emulator clock, then seeded digits."""
    number = str(state.store.reserve_sequence("request", 1))
    draw = int(seeded_unit(state.settings.seed, "request", number) * 10_000_000)
    return f"{int(now * 1000):013d}{draw // 1000:04d}RX-{draw % 1000:03d}"


def technical_account(client_id: str) -> str:
    return hashlib.sha256(client_id.encode()).hexdigest()[:24].upper() + "@techacct.adobe.com"


def utc_day_bounds(now: float) -> tuple[float, float]:
    day = datetime.fromtimestamp(now, tz=UTC).date()
    start = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
    return start, start + DAY


def check_daily_cap(state: EmulatorState, new_jobs: int, now: float) -> None:
    """Adobe documents that exceeding the daily limit returns 400 but shows no body; this body is ours."""
    start, end = utc_day_bounds(now)
    created_today = state.store.count_jobs_created("privacy", state.settings.org_id, start, end)
    if created_today + new_jobs > state.settings.daily_job_cap:
        raise aep_error(
            400,
            DAILY_LIMIT_CODE,
            "Daily limit exceeded",
            "The daily job limit for this organization has been reached; retry tomorrow.",
        )


def create_jobs(
    state: EmulatorState, request: ValidatedJobRequest, *, kind: str, sandbox_name: str | None = None
) -> tuple[str, list[JobRecord]]:
    """Store one job per (user, action) in one transaction; returns the request id and the jobs."""
    settings = state.settings
    now = state.clock.now()
    if kind == "privacy":
        check_daily_cap(state, sum(len(user.actions) for user in request.users), now)
    request_id = request.request_id or new_request_id(state, now)
    first = state.store.reserve_sequence("job", sum(len(user.actions) for user in request.users))
    jobs = []
    for user in request.users:
        for action in user.actions:
            job_id = seeded_uuid(settings.seed, "job", str(first + len(jobs)))
            stretch, outcome_draw = job_draws(settings.seed, job_id, settings.jitter_ratio)
            jobs.append(
                JobRecord(
                    job_id=job_id,
                    kind=kind,
                    org_id=settings.org_id,
                    request_id=request_id,
                    user_key=user.key,
                    action=action,
                    regulation=request.regulation,
                    include=request.include,
                    user_ids=user.user_ids,
                    options=request.options,
                    sandbox_name=sandbox_name,
                    submitted_by=technical_account(settings.client_id),
                    created_at=now,
                    stretch=stretch,
                    outcome_draw=outcome_draw,
                )
            )
    state.store.insert_jobs(jobs)
    return request_id, jobs


def created_response(request_id: str, jobs: list[JobRecord], *, request_status: bool) -> dict:
    """The documented create response: one entry per job, echoing the user's identities."""
    body: dict = {"requestId": request_id, "totalRecords": len(jobs)}
    if request_status:
        body["requestStatus"] = 1
    body["jobs"] = [
        {
            "jobId": job.job_id,
            "customer": {"user": {"key": job.user_key, "action": [job.action], "userIDs": job.user_ids}},
        }
        for job in jobs
    ]
    return body


def basic_job(job: JobRecord, state: EmulatorState, now: float) -> dict:
    lifecycle = lifecycle_of(state.settings)
    return {
        "jobId": job.job_id,
        "requestId": job.request_id,
        "userKey": job.user_key,
        "action": job.action,
        "status": job_status(job, now, lifecycle),
        "submittedBy": job.submitted_by,
        "createdDate": adobe_date(job.created_at),
        "lastModifiedDate": adobe_date(last_modified_at(job, now, lifecycle)),
    }


def list_page(
    state: EmulatorState, *, kind: str, regulation: str | None, query: ListQuery, now: float
) -> dict:
    """One page of a list endpoint, privacy or hygiene: the same store query and the same response shape."""
    total, jobs = state.store.list_jobs(
        kind=kind,
        org_id=state.settings.org_id,
        regulation=regulation,
        created_from=query.created_from,
        created_to=query.created_to,
        status=query.status,
        now=now,
        lifecycle=lifecycle_of(state.settings),
        offset=query.offset,
        limit=query.size,
    )
    return {"totalRecords": total, "jobDetails": [basic_job(job, state, now) for job in jobs]}
