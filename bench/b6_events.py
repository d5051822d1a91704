"""B6 event-driven waiting: status calls per day and completion-to-archive delay, journal vs list polling.

Steady state of the issue: 600,000 open jobs (30 days at Adobe's cap of 20,000 a day), 20,000 finishing
a day. It runs at a reduced scale (1/100; the smoke run 1/1000) on the emulator and extrapolates:

- Setup: 30 daily cohorts of jobs (one nightly run each, two products so three events a job), created
  a day apart on the emulator clock; each job finishes 30-31 days after creation, so during the
  measured day one cohort's jobs finish, spread over the day, while the other 29 stay open.
- Polling (today's wiring): one wait per nightly run, each polling its run's day with the trigger's
  real code (`PrivacyServiceAsyncHook.summarize_jobs`), every `poll_interval` (the nightly's 900 s)
  and at the 3600 s the trigger's growing interval settles on during a 15-45-day wait.
- Journal: every `RECORDER_INTERVAL` seconds the watch trigger's peek (``limit=1`` past the recorded
  position); when it finds events, the real `JournalRecorder` drains the journal into moto S3 (pages
  and the final 204). Waits read S3 (no Adobe call), checking within `TRIGGER_POLL` s.
  Jobs without an event by their fallback time go to the list endpoint (one summarize of their
  run's day); the optional daily full sweep is reported separately.
- Calls are counted by the emulator (`/_emulator/stats`). Extrapolation: a list poll of a run costs
  ceil(jobs / 1000) pages (checked at the reduced scale), a journal round one peek plus ceil(events
  / 1000) pages plus the 204 at the end, counted as if every round found events. The archive's one detail read per job is the same in both modes, so it is
  not counted. Delay = from a job's completion (its event's time) to the emulator clock before the
  poll that sees it, or after the journal round that recorded it plus a full S3 check interval.
"""

from __future__ import annotations

import asyncio
import json
import math
import statistics
from datetime import UTC, datetime

from bench.measure import run_probe
from bench.report import BenchmarkRun, Result, docstring_notes
from bench.stack import ARCHIVE_URI, UNCAPPED, running_stack

DAY = 86400.0
OPEN_JOBS = 600_000
COHORTS = 30
PAGE = 1000
POLL_INTERVALS = (900, 3600)
RECORDER_INTERVAL = 300
TRIGGER_POLL = 60
LIST_ROUTE = "GET /data/core/privacy/jobs"
JOURNAL_ROUTE = "GET /events/organizations/{org_id}/integrations/{credential_id}/{registration_id}"
COMPLETE_AFTER = 30 * DAY
JITTER = DAY / COMPLETE_AFTER  # a cohort finishes over one day: the oldest during the measured day


def simulate(scale: int, recorder_interval: int, emulator_url: str) -> dict:
    """Probe: build the steady state at 1/`scale`, run one day both ways, return counts and delays."""
    return asyncio.run(_simulate(scale, recorder_interval, emulator_url))


async def _simulate(scale: int, recorder_interval: int, emulator_url: str) -> dict:
    import httpx
    from adobe_privacy.events import JournalRecorder, PrivacyJournalReader, S3JournalStore
    from adobe_privacy.hooks import PrivacyServiceAsyncHook, PrivacyServiceHook
    from adobe_privacy.storage import PrivacyArchiveStore
    from privacy_pipeline.events import EventKeys

    admin = httpx.Client(base_url=f"{emulator_url}/_emulator", timeout=120)

    def now() -> float:
        return admin.get("/clock").json()["now"]

    def calls(route: str) -> int:
        return sum(admin.get("/stats").json()["calls"].get(route, {}).values())

    per_cohort = OPEN_JOBS // COHORTS // scale
    hook = PrivacyServiceHook()
    cohorts: list[tuple[str, list[str]]] = []
    for day in range(COHORTS):
        keys = [f"b6-{day}-{index}" for index in range(per_cohort)]
        payload = {
            "companyContexts": [{"namespace": "imsOrgID", "value": hook.org_id}],
            "users": [{"key": key, "action": ["access"],
                       "userIDs": [{"namespace": "email", "value": f"{key}@example.test", "type": "standard"}]}
                      for key in keys],
            "include": ["Analytics", "profileService"], "regulation": "gdpr",
        }
        created = hook.create_jobs(payload)
        cohorts.append((datetime.fromtimestamp(now(), UTC).date().isoformat(), [job.job_id for job in created]))
        admin.post("/clock/advance", json={"seconds": DAY})

    async_hook = PrivacyServiceAsyncHook()
    archive = PrivacyArchiveStore(ARCHIVE_URI)
    store = S3JournalStore(archive, EventKeys(archive.prefix))
    recorder = JournalRecorder(PrivacyJournalReader(page_limit=PAGE), store)
    await recorder.record()  # nothing has finished yet: the recorder starts at the journal's end
    recorded_seq = store.read_position()[0].seq
    watch = PrivacyJournalReader(page_limit=1)  # the watch trigger's peek (PrivacyJournalWatchTrigger)
    await watch.connection()
    schedule = sorted({*range(0, int(DAY) + 1, POLL_INTERVALS[0]), *range(0, int(DAY) + 1, recorder_interval)})
    poll_calls: dict[int, int] = {interval: 0 for interval in POLL_INTERVALS}
    poll_times: dict[int, list[float]] = {interval: [] for interval in POLL_INTERVALS}
    pages_per_poll: list[int] = []
    seen_at: dict[str, float] = {}
    finished_at: dict[str, float] = {}
    journal_rounds: list[dict] = []
    elapsed = 0.0
    for offset in schedule:
        admin.post("/clock/advance", json={"seconds": offset - elapsed})
        elapsed = offset
        if offset % POLL_INTERVALS[0] == 0:
            polled_at, before = now(), calls(LIST_ROUTE)  # the clock before the poll: no favour to events
            for day, job_ids in cohorts:
                await async_hook.summarize_jobs({"gdpr": job_ids}, from_date=day, to_date=day)
            used = calls(LIST_ROUTE) - before
            pages_per_poll.append(used)
            for interval in POLL_INTERVALS:
                if offset % interval == 0:
                    poll_calls[interval] += used
                    poll_times[interval].append(polled_at)
        if offset % recorder_interval == 0:
            before, events = calls(JOURNAL_ROUTE), 0
            async with watch.session() as http:
                peek = await watch.fetch(http, watch.first_url(store.read_position()[0].position))
            if peek.status == 200:  # the watch fires; the recorder run drains the journal
                events = (await recorder.record()).events
            recorded_at = now()  # the clock after recording: no favour to events either
            for seq in store.record_seqs(recorded_seq):
                for event in store.get_record(seq).events:
                    if event.is_final and event.job_id not in seen_at:
                        seen_at[event.job_id] = recorded_at
                        finished_at[event.job_id] = datetime.fromisoformat(event.time).timestamp()
                recorded_seq = seq
            journal_rounds.append({"calls": calls(JOURNAL_ROUTE) - before, "events": events})
    finished = sorted(finished_at.items(), key=lambda item: item[1])
    poll_delays = {
        interval: [min((t for t in times if t >= at), default=times[-1] + interval) - at for _, at in finished]
        for interval, times in poll_times.items()
    }
    journal_delays = [seen_at[job] - at + TRIGGER_POLL for job, at in finished]
    return {
        "per_cohort": per_cohort,
        "open_at_start": per_cohort * COHORTS,
        "finished_today": len(finished),
        "pages_per_poll": pages_per_poll[0],
        "expected_pages_per_poll": sum(math.ceil(len(ids) / PAGE) for _, ids in cohorts),
        "poll_calls": {str(interval): count for interval, count in poll_calls.items()},
        "journal_rounds": journal_rounds,
        "journal_calls": sum(round_["calls"] for round_ in journal_rounds),
        "poll_delay_mean": {str(k): statistics.fmean(v) for k, v in poll_delays.items()} if finished else {},
        "journal_delay_mean": statistics.fmean(journal_delays) if finished else None,
        "journal_delay_max": max(journal_delays, default=None),
    }


def extrapolate(measured: dict, scale: int) -> dict:
    """Per day at full scale from the measured per-poll and per-round counts."""
    full_pages_per_poll = COHORTS * math.ceil(OPEN_JOBS // COHORTS / PAGE)
    polling = {interval: int(DAY // interval) * full_pages_per_poll for interval in POLL_INTERVALS}
    # Every round peeks once; at full scale assume every round finds events (a page or more + the 204).
    journal = sum(1 + math.ceil(max(r["events"], 1) * scale / PAGE) + 1 for r in measured["journal_rounds"])
    fallback = math.ceil(OPEN_JOBS // COHORTS / PAGE)  # one run a day reaches its fallback time
    return {"polling": polling, "journal": journal, "fallback": fallback, "sweep": full_pages_per_poll}


def run(smoke: bool = False) -> BenchmarkRun:
    scale = 1000 if smoke else 100
    recorder_interval = 900 if smoke else RECORDER_INTERVAL
    bench = BenchmarkRun(
        "B6", "Event-driven waiting (I/O Events journal) vs list polling", "python -m bench --only B6",
        notes=docstring_notes(__doc__),
    )
    settings = {"processing_after_seconds": 3600, "complete_after_seconds": COMPLETE_AFTER,
                "jitter_ratio": JITTER, "daily_job_cap": UNCAPPED}
    with running_stack("b6", settings) as stack:
        env = dict(stack.env)
        conn = json.loads(env["AIRFLOW_CONN_ADOBE_PRIVACY_DEFAULT"])
        emulator = stack.emulator
        conn["extra"]["journal_url"] = (
            f"{emulator.base_url}/events/organizations/{emulator.org_id}/integrations/{emulator.client_id}/privacy-events"
        )
        env["AIRFLOW_CONN_ADOBE_PRIVACY_DEFAULT"] = json.dumps(conn)
        measured = run_probe("bench.b6_events:simulate", env=env, scale=scale,
                             recorder_interval=recorder_interval, emulator_url=emulator.base_url)
    if measured["pages_per_poll"] != measured["expected_pages_per_poll"]:
        raise RuntimeError(f"a poll cost {measured['pages_per_poll']} list calls, not the "
                           f"{measured['expected_pages_per_poll']} the extrapolation assumes")
    if not measured["finished_today"]:
        raise RuntimeError("no job finished during the measured day")
    full = extrapolate(measured, scale)
    journal_total = full["journal"] + full["fallback"]
    size = (f"1/{scale} scale: {measured['open_at_start']:,} open, {measured['finished_today']:,} finished "
            f"in the day; extrapolated to {OPEN_JOBS:,} open, {OPEN_JOBS // COHORTS:,}/day")
    for interval in POLL_INTERVALS:
        polling = full["polling"][interval]
        bench.results.append(Result(
            "B6", f"status calls/day, polling every {interval} s", f"{journal_total:,} (journal {full['journal']:,}"
            f" + fallback {full['fallback']})", f"{polling:,} list calls", polling / journal_total, ">= 10x fewer",
            polling / journal_total >= 10,
            notes=f"{size}; measured {measured['journal_calls']} journal calls and "
                  f"{measured['poll_calls'][str(interval)]} list calls in the reduced day; with a daily full list sweep "
                  f"on top: {journal_total + full['sweep']:,} ({polling / (journal_total + full['sweep']):.1f}x fewer)",
        ))
        poll_delay = measured["poll_delay_mean"][str(interval)]
        bench.results.append(Result(
            "B6", f"completion -> archive start, mean, vs polling every {interval} s",
            f"{measured['journal_delay_mean']:.0f} s (max {measured['journal_delay_max']:.0f} s)",
            f"{poll_delay:.0f} s", measured["journal_delay_mean"] / poll_delay, "<= 1.00 (no worse)",
            measured["journal_delay_mean"] <= poll_delay,
            notes=f"recorder every {recorder_interval} s, wait checks S3 every {TRIGGER_POLL} s",
        ))
    return bench
