"""The intake step's wiring (issues 11 and 13): line accounting in intake.json, input alerts, the look-back
over past inbox partitions (exactly once by hash), rejects logged by reason, settings that fail at once.

Real intake operators against moto over HTTP; alerts go through a notifier that records them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import structlog
from airflow.sdk import BaseNotifier
from airflow.sdk.exceptions import AirflowFailException

from tests.companion.conftest import HEADER, subject_rows


class RecordingNotifier(BaseNotifier):
    """Keeps every `privacy_alert` it is fired with (send_alert copies the notifier: the list is shared)."""

    def __init__(self) -> None:
        super().__init__()
        self.alerts: list[dict[str, Any]] = []

    def notify(self, context: Any) -> None:
        self.alerts.append(dict(context["privacy_alert"]))


def intake(companion, input_uri: str, *, ds: str = "2026-03-02", run_id: str = "manual__test", **kwargs: Any):
    from adobe_privacy.operators import PrivacyIntakeOperator

    notifier = RecordingNotifier()
    op = PrivacyIntakeOperator(task_id="take_in", input_uri=input_uri, archive_uri=companion.archive_uri,
                               default_include=["aepDataLake"], alert_notifier=notifier, **kwargs)
    context = companion.context(ds=ds, run_id=run_id)
    with structlog.testing.capture_logs() as logs:
        chunks = op.execute(context)
    from privacy_pipeline.layout import ArchiveLayout

    recorded = companion.get_json(ArchiveLayout(companion.prefix).run(ds, run_id).intake)
    return chunks, recorded, notifier.alerts, logs


def put_inbox(companion, key: str, body: str) -> str:
    companion.s3.put_object(Bucket=companion.bucket, Key=f"{companion.prefix}-inbox/{key}", Body=body.encode())
    return f"s3://{companion.bucket}/{companion.prefix}-inbox"


def test_intake_json_accounts_for_every_physical_line(companion):
    rows = subject_rows(5) + ["bad-1,erase,gdpr,email,x@example.com,standard,2026-03-01T00:00:00Z,", ""]
    path = companion.write_csv("requests.csv", rows)  # header + 6 records + 1 blank line

    _chunks, recorded, _alerts, _logs = intake(companion, str(path))

    assert recorded["lines_read"] == 8 == len(path.read_text().splitlines())
    assert recorded["lines_read"] == recorded["lines_header"] + recorded["lines_blank"] + recorded["lines_in_records"]
    (source,) = recorded["sources"]
    assert source["lines_read"] == 8 and source["rows_read"] == 6 and source["rows_rejected"] == 1
    assert recorded["alerts"] == [] and recorded["nothing_to_do"] is None


def test_rejects_are_logged_by_field_and_reason_with_counts_never_values(companion):
    bad = [f"bad-{i},erase,gdpr,email,secret-{i}@example.com,standard,2026-03-01T00:00:00Z," for i in range(3)]
    bad.append("bad-mail,access,gdpr,email,not-an-email@@example,standard,2026-03-01T00:00:00Z,")
    path = companion.write_csv("requests.csv", subject_rows(2) + bad)

    _chunks, recorded, _alerts, logs = intake(companion, str(path))

    assert recorded["rows_rejected"] == 4
    warnings = [entry["event"] % entry.get("positional_args", ()) if entry.get("positional_args") else entry["event"]
                for entry in logs if entry["log_level"] == "warning"]
    text = "\n".join(warnings)
    assert "4 row(s) rejected" in text and "rejects.csv" in text
    assert any(line.strip().startswith("3 x action") for line in warnings), warnings
    assert any(line.strip().startswith("1 x") and "value" in line for line in warnings), warnings
    assert "example.com" not in json.dumps(logs, default=str), "no identity value reaches the log"


def test_an_empty_inbox_alerts_inbox_empty_and_warns_that_the_run_did_nothing(companion):
    inbox = f"s3://{companion.bucket}/{companion.prefix}-inbox"

    chunks, recorded, alerts, logs = intake(companion, f"{inbox}/2026-03-02/", lookback_root=inbox)

    assert chunks == []
    assert [a["kind"] for a in alerts] == ["inbox_empty"] == [a["kind"] for a in recorded["alerts"]]
    assert alerts[0]["items"] == [f"{inbox}/2026-03-02/"]
    assert recorded["nothing_to_do"].startswith("This run did nothing: no input under")
    assert any(e["log_level"] == "warning" and "did nothing" in str(e) for e in logs), logs


def test_a_missing_local_input_is_an_empty_inbox_not_a_retried_crash(companion):
    _chunks, recorded, alerts, _logs = intake(companion, str(companion.tmp_path / "no-such-folder"))
    assert [a["kind"] for a in alerts] == ["inbox_empty"] and recorded["rows_read"] == 0


def test_a_whole_file_reject_alerts_input_rejected(companion):
    inbox = put_inbox(companion, "2026-03-02/picture.csv", "\x89PNG\r\n\x1a\n not a csv at all")

    _chunks, recorded, alerts, _logs = intake(companion, f"{inbox}/2026-03-02/")

    assert [a["kind"] for a in alerts] == ["input_rejected"]
    assert alerts[0]["items"] == [f"{inbox}/2026-03-02/picture.csv"]
    assert recorded["sources"][0]["file_error"]


def test_the_look_back_takes_in_a_late_file_once_and_the_same_bytes_only_once(companion):
    late_body = HEADER + "".join(r + "\n" for r in subject_rows(3, prefix="late"))
    inbox = put_inbox(companion, "2026-03-01/late.csv", late_body)  # landed after 03-01's run
    put_inbox(companion, "2026-02-28/late-copy.csv", late_body)  # the same bytes, dropped twice
    put_inbox(companion, "2026-03-02/today.csv", HEADER + "".join(r + "\n" for r in subject_rows(2, prefix="t")))

    _chunks, recorded, alerts, _logs = intake(companion, f"{inbox}/2026-03-02/", lookback_root=inbox,
                                              lookback_days="3")

    assert recorded["subjects"] == 5, "today's 2 and the late file's 3, the copy not again"
    assert [a["kind"] for a in alerts] == ["late_input"]
    assert alerts[0]["items"] == [f"{inbox}/2026-02-28/late-copy.csv"], "the oldest occurrence of the bytes"
    assert [s["reason"] for s in recorded["skipped_sources"]] == ["same content as an input of this run"]
    assert {s["partition"] for s in recorded["sources"]} == {"2026-02-28", "2026-03-02"}

    # The next night looks back over the same days: nothing is taken in twice.
    _chunks, again, alerts, _logs = intake(companion, f"{inbox}/2026-03-03/", ds="2026-03-03", run_id="next",
                                           lookback_root=inbox, lookback_days=3)
    assert again["subjects"] == 0 and again["late_sources"] == []
    assert [a["kind"] for a in alerts] == ["inbox_empty"]

    # Look-back 0: a late file stays where it is.
    put_inbox(companion, "2026-03-03/later.csv", HEADER + "".join(r + "\n" for r in subject_rows(1, prefix="x")))
    _chunks, none, _alerts, _logs = intake(companion, f"{inbox}/2026-03-04/", ds="2026-03-04", run_id="n0",
                                           lookback_root=inbox, lookback_days=0)
    assert none["subjects"] == 0 and none["lookback_days"] == 0


def test_extra_regulations_from_the_variable_are_accepted_with_their_window(companion):
    path = companion.write_csv("requests.csv", subject_rows(2, regulation="dpdpa_ind"))

    _chunks, without, _alerts, _logs = intake(companion, str(path), run_id="without")
    assert without["rows_rejected"] == 2

    companion.prefix += "-extra"
    companion.archive_uri += "-extra"
    _chunks, with_extra, _alerts, _logs = intake(companion, str(path), run_id="with",
                                                 extra_regulations='{"dpdpa_ind": 30}')
    assert with_extra["rows_rejected"] == 0 and with_extra["subjects"] == 2


@pytest.mark.parametrize("setting, value, named", [
    ("extra_regulations", "{not json", "privacy_extra_regulations"),
    ("extra_regulations", '{"gdpr": 0}', "privacy_extra_regulations"),
    ("lookback_days", "-1", "privacy_input_lookback_days"),
    ("as_of", "yesterday", "privacy_as_of"),
    ("default_include", ["photoshop"], "aepDataLake"),
])
def test_a_bad_setting_fails_at_once_without_reading_anything(companion, setting, value, named):
    path = companion.write_csv("requests.csv", subject_rows(2))
    kwargs = {"lookback_root": "s3://nowhere/inbox", setting: value}
    with pytest.raises(AirflowFailException, match=named):
        if setting == "default_include":
            from adobe_privacy.operators import PrivacyIntakeOperator

            PrivacyIntakeOperator(task_id="t", input_uri=str(path), archive_uri=companion.archive_uri,
                                  default_include=value).execute(companion.context())
        else:
            intake(companion, str(path), **kwargs)
    assert companion.keys("runs") == [], "nothing staged, nothing recorded"


def test_a_missing_api_pool_fails_at_once_saying_how_to_create_it(companion, airflow_db):
    path = companion.write_csv("requests.csv", subject_rows(2))
    with pytest.raises(AirflowFailException, match=r"airflow pools set no_such_api_pool"):
        intake(companion, str(path), api_pool="no_such_api_pool")
    assert companion.keys("runs") == []
