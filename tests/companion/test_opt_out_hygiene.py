"""Opt-out of sale (POST /consent, evidence in S3, once per payload) and Data Hygiene deletes, over HTTP."""

from __future__ import annotations

import logging

from tests.companion.conftest import CONSENT_ROUTE, HYGIENE_ROUTE, subject_rows


def send_opt_outs(companion, input_path, run_id: str, **kwargs):
    from adobe_privacy.operators import SubmitOptOutsOperator

    op = SubmitOptOutsOperator(task_id="send_opt_outs", input_uri=str(input_path),
                               archive_uri=companion.archive_uri, **kwargs)
    return op.execute(companion.context(run_id=run_id))


def test_opt_outs_are_sent_once_with_evidence_and_no_identity_in_logs(companion, caplog):
    rows = (subject_rows(3, action="opt_out_of_sale", regulation="ccpa", prefix="oo")
            + subject_rows(2, action="opt_out_of_sale", regulation="ccpa", prefix="ecid", namespace="ecid")
            + subject_rows(1, action="access", prefix="job"))
    path = companion.write_csv("opt-out.csv", rows)
    with caplog.at_level(logging.DEBUG):
        summary = send_opt_outs(companion, path, "run-1", max_values_per_request=4)
    assert summary["opt_out_subjects"] == 5 and summary["job_subjects_left_to_nightly"] == 1
    assert summary["payloads_sent"] == 2 and summary["rows_rejected"] == 0
    assert companion.calls(CONSENT_ROUTE) == 2
    assert "oo-0@example.com" not in caplog.text and "ecid-1" not in caplog.text.replace("ecid-1@", "")

    evidence = [companion.get_json(k) for k in companion.keys("runs/2026-03-02/run-1/consent")]
    assert {e["status"] for e in evidence} == {202} and sum(e["values"] for e in evidence) == 5
    sent = {v for e in evidence for entity in e["sent"]["entities"] for v in entity["values"]}
    assert "oo-0@example.com" in sent and all(e["sent"]["optOutOfSale"] is True for e in evidence)
    head = companion.s3.head_object(Bucket=companion.bucket, Key=companion.keys("runs/2026-03-02/run-1/consent")[0])
    assert head["ServerSideEncryption"] == "AES256"

    again = send_opt_outs(companion, path, "run-2", max_values_per_request=4)  # the file dropped twice
    assert again["payloads_sent"] == 0 and again["payloads_already_accepted"] == 2
    assert companion.calls(CONSENT_ROUTE) == 2


def test_hygiene_deletes_submitted_once_waited_on_and_archived(companion):
    from adobe_privacy.operators import (
        ArchiveHygieneJobsOperator,
        PrivacyRunReportOperator,
        SubmitHygieneBatchesOperator,
    )
    from adobe_privacy.sensors import HygieneDeletesSensor

    # Jobs finish only when the test moves the clock: the first poke must see them open however slowly
    # this machine gets there.
    companion.emulator.configure(processing_after_seconds=5.0, complete_after_seconds=20.0)
    hygiene_uri = f"{companion.archive_uri}/hygiene"
    rows = subject_rows(3, action="delete", prefix="std") + subject_rows(
        2, action="delete", prefix="crm", namespace="crmId", id_type="custom")
    (keys,) = companion.take_in(companion.write_csv("deletes.csv", rows), run_id="h1", archive_uri=hygiene_uri,
                                allowed_actions=["delete"])
    summary = companion.submit(keys, run_id="h1", archive_uri=hygiene_uri, operator=SubmitHygieneBatchesOperator)
    assert summary["jobs"] == 5 and companion.calls(HYGIENE_ROUTE) == 1
    again = companion.submit(keys, run_id="h1", archive_uri=hygiene_uri, operator=SubmitHygieneBatchesOperator)
    assert again["jobs"] == 5 and companion.calls(HYGIENE_ROUTE) == 1  # a retried task posts nothing

    sensor = HygieneDeletesSensor(task_id="wait", submissions=[summary], api="jobs", poll_interval=5,
                                  wait_timeout=60)
    assert sensor.poke(companion.context(run_id="h1")).is_done is False
    companion.advance(seconds=30)
    done = sensor.poke(companion.context(run_id="h1"))
    assert done.is_done and done.xcom_value["counts"] == {"complete": 5}

    archived = ArchiveHygieneJobsOperator(task_id="archive", batch_ids=summary["batch_ids"], archive_uri=hygiene_uri,
                                          chunk_index=0).execute(companion.context(run_id="h1"))
    assert archived["jobs"] == 5 and archived["status:complete"] == 5
    report = PrivacyRunReportOperator(task_id="report", archive_uri=hygiene_uri, submissions=[summary]).execute(
        companion.context(run_id="h1"))
    assert report["jobs_created"] == 5 and report["rows_rejected"] == 0
    assert not companion.ledger("batches")  # the privacy ledger is untouched: hygiene has its own root
