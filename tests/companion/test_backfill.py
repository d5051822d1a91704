"""Backfills: each day's input partition is taken in and submitted exactly once, also when the range runs twice.

`airflow backfill create` makes one run per logical date, each reading `<privacy_input_uri>/<ds>/`;
a second backfill over the same range (`--reprocess-behavior completed`) makes new runs with new run
ids. What keeps that exactly once is ours, not the scheduler's: the input-hash ledger (a file already
taken in is skipped) and the batch ledger (a submitted batch is never posted again). This test drives
the DAG's own operators per date with backfill run ids against moto and the emulator, which checks
exactly that in seconds; a scheduler-driven backfill would add minutes and test Airflow, not us.
"""

from __future__ import annotations

from tests.companion.conftest import JOBS_ROUTE, subject_rows

DATES = ("2026-03-01", "2026-03-02", "2026-03-03")


def backfill(companion, inbox: str, attempt: str) -> list[dict]:
    from adobe_privacy.operators import PrivacyIntakeOperator, SubmitPrivacyBatchesOperator
    from privacy_pipeline.layout import ArchiveLayout

    summaries = []
    for ds in DATES:
        run_id = f"backfill__{ds}T02:00:00+00:00{attempt}"
        context = companion.context(ds=ds, run_id=run_id)
        chunks = PrivacyIntakeOperator(task_id="take_in", input_uri=f"{inbox}/{ds}/", archive_uri=companion.archive_uri,
                                       default_include=["aepDataLake"]).execute(context)
        for chunk in chunks:
            summaries.append(SubmitPrivacyBatchesOperator(task_id="submit", batch_keys=chunk, daily_job_budget="",
                                                          archive_uri=companion.archive_uri).execute(context))
        summaries.append({"ds": ds, "intake": companion.get_json(ArchiveLayout(companion.prefix).run(ds, run_id).intake)})
    return summaries


def test_backfill_twice_processes_each_partition_once(companion):
    inbox = f"s3://{companion.bucket}/{companion.prefix}-inbox"
    for i, ds in enumerate(DATES):
        body = "request_id,action,regulation,namespace,value,type,received_at,include\n" + "\n".join(
            subject_rows(4, prefix=f"d{i}")) + "\n"
        companion.s3.put_object(Bucket=companion.bucket, Key=f"{companion.prefix}-inbox/{ds}/requests.csv",
                                Body=body.encode())
    first = backfill(companion, inbox, "")
    assert [s["intake"]["subjects"] for s in first if "intake" in s] == [4, 4, 4]
    assert companion.calls(JOBS_ROUTE) == 3 and len(companion.ledger("inputs")) == 3

    second = backfill(companion, inbox, ".again")  # the same range again, new run ids
    intakes = [s["intake"] for s in second if "intake" in s]
    assert [i["subjects"] for i in intakes] == [0, 0, 0]
    assert [len(i["skipped_sources"]) for i in intakes] == [1, 1, 1]
    assert companion.calls(JOBS_ROUTE) == 3  # nothing posted again
    assert set(companion.jobs_per_user_action().values()) == {1} and len(companion.jobs_per_user_action()) == 12
