"""PrivacyJobsSensor: pokes once, defers, validates the event it resumes with; non-deferrable too."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from adobe_privacy.exceptions import PrivacyServiceError
from adobe_privacy.sensors import PrivacyJobsSensor
from adobe_privacy.triggers import PrivacyJobsTrigger
from airflow.sdk.exceptions import AirflowException, AirflowSensorTimeout, TaskDeferred

from tests.provider.helpers import JOBS_ROUTE, REGULATION, calls, make_payload

TODAY = datetime.now(UTC).date().isoformat()
SUCCESS = {"status": "success", "counts": {"complete": 2}, "open": 0, "error_count": 0, "error_job_ids": []}


def make_sensor(jobs_by_regulation, **kwargs) -> PrivacyJobsSensor:
    return PrivacyJobsSensor(
        task_id="wait",
        jobs_by_regulation=jobs_by_regulation,
        from_date=TODAY,
        to_date=TODAY,
        **kwargs,
    )


def test_defers_after_one_poke_when_jobs_are_open(emu, hook):
    ids = [job.job_id for job in hook.create_jobs(make_payload(emu.org_id, ["a", "b"]))]
    sensor = make_sensor({REGULATION: ids}, poke_interval=120, timeout=3600, max_poll_interval=900)

    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context={})

    trigger = deferred.value.trigger
    assert isinstance(trigger, PrivacyJobsTrigger)
    assert trigger.jobs_by_regulation == {REGULATION: ids}
    assert (trigger.poll_interval, trigger.max_poll_interval) == (120, 900)
    assert trigger.end_at is not None
    assert deferred.value.method_name == "execute_complete"
    assert calls(emu, f"GET {JOBS_ROUTE}") == {"200": 1}


def test_returns_the_summary_without_deferring_when_jobs_are_done(emu, hook):
    emu.configure(error_rate=0.0)
    ids = [job.job_id for job in hook.create_jobs(make_payload(emu.org_id, ["a", "b"]))]
    emu.advance_clock(3600)

    assert make_sensor({REGULATION: ids}).execute(context={}) == SUCCESS


def test_non_deferrable_sensor_reports_open_jobs_at_the_timeout(emu, hook):
    ids = [job.job_id for job in hook.create_jobs(make_payload(emu.org_id, ["a"]))]
    sensor = make_sensor({REGULATION: ids}, deferrable=False, poke_interval=0.1, timeout=0.3)

    result = sensor.execute(context={})

    assert result["status"] == "timeout" and result["open"] == 1


def test_non_deferrable_sensor_can_fail_on_timeout(emu, hook):
    ids = [job.job_id for job in hook.create_jobs(make_payload(emu.org_id, ["a"]))]
    sensor = make_sensor(
        {REGULATION: ids}, deferrable=False, poke_interval=0.1, timeout=0.2, fail_on_timeout=True
    )

    with pytest.raises(AirflowSensorTimeout):
        sensor.execute(context={})


def test_execute_complete_returns_success_and_reports_timeouts():
    sensor = make_sensor({REGULATION: ["j1"]})
    timeout = {"status": "timeout", "counts": {"processing": 1}, "open": 1, "error_count": 0, "error_job_ids": []}

    assert sensor.execute_complete({}, SUCCESS) == SUCCESS
    assert sensor.execute_complete({}, timeout) == timeout
    with pytest.raises(AirflowSensorTimeout):
        make_sensor({REGULATION: ["j1"]}, fail_on_timeout=True).execute_complete({}, timeout)


@pytest.mark.parametrize(
    "event",
    [
        None,
        {},
        {"status": "done"},
        {"status": "success"},
        {"status": "success", "counts": {}, "open": 3, "error_job_ids": []},
        {"status": "timeout", "counts": [], "open": 1, "error_job_ids": []},
        {"status": "error"},
        "success",
    ],
)
def test_execute_complete_fails_loudly_on_a_bad_event(event):
    with pytest.raises(AirflowException, match="event"):
        make_sensor({REGULATION: ["j1"]}).execute_complete({}, event)


def test_execute_complete_raises_on_an_error_event():
    with pytest.raises(PrivacyServiceError, match="HTTP 400"):
        make_sensor({REGULATION: ["j1"]}).execute_complete({}, {"status": "error", "message": "HTTP 400"})
