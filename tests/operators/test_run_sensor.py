"""PrivacyRunJobsSensor: a run with more job ids than a trigger may carry defers with a ledger reference."""

from __future__ import annotations

from unittest import mock

import pytest
from adobe_privacy.hooks import PrivacyServiceHook
from adobe_privacy.sensors import PrivacyRunJobsSensor
from adobe_privacy.triggers import MAX_INLINE_JOB_IDS
from airflow.sdk.exceptions import AirflowException, TaskDeferred


def submissions(jobs: int, chunks: int = 3) -> list[dict]:
    per = -(-jobs // chunks)
    return [{"chunk": c, "jobs": per, "batch_ids": [f"b-{c}-{i}" for i in range(2)],
             "jobs_by_regulation": {"gdpr": [f"j-{c}-{i}" for i in range(per)]},
             "from_date": "2026-03-01", "to_date": "2026-03-30"} for c in range(chunks)]


@pytest.mark.parametrize("jobs", [12, MAX_INLINE_JOB_IDS * 3])
def test_the_trigger_gets_ids_inline_only_when_they_are_few(jobs):
    sensor = PrivacyRunJobsSensor(task_id="wait", submissions=submissions(jobs), archive_uri="s3://bucket/root",
                                  poll_interval=5, wait_timeout=60)
    still_open = {"counts": {"processing": jobs}, "open": jobs, "error_job_ids": []}
    with mock.patch.object(PrivacyServiceHook, "summarize_jobs", return_value=still_open), \
            pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    trigger = deferred.value.trigger
    if jobs <= MAX_INLINE_JOB_IDS:
        assert trigger.ledger_ref is None and len(trigger.jobs_by_regulation["gdpr"]) == jobs
    else:
        assert trigger.jobs_by_regulation == {}
        assert trigger.ledger_ref == {"archive_uri": "s3://bucket/root", "aws_conn_id": "aws_default",
                                      "batch_ids": sorted(b for s in submissions(jobs) for b in s["batch_ids"])}


def test_too_many_ids_without_an_archive_root_fail_clearly():
    sensor = PrivacyRunJobsSensor(task_id="wait", submissions=submissions(MAX_INLINE_JOB_IDS * 2))
    with pytest.raises(AirflowException, match="archive_uri"):
        sensor.execute({})
