"""The trigger's ledger reference against moto: the ids it reads are exactly the ones the submit recorded."""

from __future__ import annotations

from tests.companion.conftest import subject_rows


def test_a_ledger_reference_resolves_to_the_submitted_job_ids(companion):
    from adobe_privacy.triggers import load_ledger_jobs

    (keys,) = companion.take_in(companion.write_csv("in.csv", subject_rows(5) + subject_rows(2, prefix="d",
                                                                                      action="delete")))
    summary = companion.submit(keys)
    jobs = load_ledger_jobs({"archive_uri": companion.archive_uri, "aws_conn_id": "aws_default",
                             "batch_ids": summary["batch_ids"]})
    assert {reg: sorted(ids) for reg, ids in jobs.items()} == \
        {reg: sorted(ids) for reg, ids in summary["jobs_by_regulation"].items()}
    assert sum(len(ids) for ids in jobs.values()) == 7
