"""`data_hygiene_deletes` end to end as `dag.test()` runs it: work orders by default, the alpha jobs API as a setting.

The real DAG file runs in this process against the emulator and moto over HTTP; the deferrable wait's
trigger runs inline. Expected numbers come from the CSV, the emulator's counts are the oracle.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from privacy_pipeline.report import check_accounting

from tests.dags.conftest import ARCHIVE_BUCKET, POLL_INTERVAL, RunOutputs, load_dag_with_fast_retries

DAG_ID = "data_hygiene_deletes"
HEADER = "request_id,action,regulation,namespace,value,type,received_at,include\n"


def hygiene_dag():
    return load_dag_with_fast_retries(DAG_ID)


def run_hygiene(nightly, logical_date: str, **conf):
    conf = {"poll_interval": POLL_INTERVAL, "wait_timeout": 120, **conf}
    when = datetime.fromisoformat(logical_date).replace(tzinfo=UTC)
    dag_run = hygiene_dag().test(logical_date=when, run_conf=conf)
    assert dag_run.state == "success", nightly.failed_tasks(dag_run)
    return dag_run


def outputs(nightly, dag_run) -> RunOutputs:
    from privacy_pipeline.layout import ArchiveLayout

    layout = ArchiveLayout(f"{nightly.archive_prefix}/hygiene")
    return RunOutputs(nightly.s3, ARCHIVE_BUCKET, layout.run(dag_run.logical_date.date().isoformat(),
                                                             dag_run.run_id).root)


def write_deletes(nightly, *, emails: int, crm_ids: int, bad: int = 1):
    path = nightly.tmp_path / "deletes.csv"
    rows = [f"e-{i},delete,gdpr,email,e-{i}@example.com,standard,2026-03-01T00:00:00Z," for i in range(emails)]
    rows += [f"c-{i},delete,gdpr,crmId,C{i:05d},custom,2026-03-01T00:00:00Z," for i in range(crm_ids)]
    rows += [f"bad-{i},delete,gdpr,email,not-an-email@@x,standard,2026-03-01T00:00:00Z," for i in range(bad)]
    path.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow
def test_work_orders_are_the_default_and_the_run_adds_up(nightly):
    nightly.emulator.configure(workorder_complete_after_seconds=1.0, workorder_failure_rate=0.0)
    source = write_deletes(nightly, emails=7, crm_ids=4)

    run = run_hygiene(nightly, "2026-03-02", input_uri=str(source))

    stats = nightly.emulator.stats()
    assert stats["workorders_total"] == 2 and stats["workorder_identities_total"] == 11
    assert stats["hygiene_jobs_total"] == 0, "the alpha path is not used by default"
    report = outputs(nightly, run).report
    check_accounting(report)
    assert report["rows_read"] == 12 and report["rows_rejected"] == 1
    assert report["subjects_submitted"] == 11 and report["jobs_created"] == 2 and report["api_posts"] == 2
    assert report["jobs_by_status"] == {"complete": 2}
    records = outputs(nightly, run).jobs
    assert sorted(r["namespace"] for r in records) == ["Email", "crmId"]
    assert all(r["productStatusDetails"] for r in records)


@pytest.mark.slow
def test_the_alpha_jobs_api_is_a_setting(nightly):
    nightly.monkeypatch.setenv("AIRFLOW_VAR_PRIVACY_HYGIENE_API", "jobs")
    source = write_deletes(nightly, emails=3, crm_ids=2, bad=0)

    run = run_hygiene(nightly, "2026-03-02", input_uri=str(source))

    stats = nightly.emulator.stats()
    assert stats["workorders_total"] == 0 and stats["hygiene_jobs_total"] == 5
    report = outputs(nightly, run).report
    check_accounting(report)
    assert report["jobs_created"] == 5 and report["jobs_by_status"] == {"complete": 5}
