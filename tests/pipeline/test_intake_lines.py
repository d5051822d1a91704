"""Intake under input nobody planned for: every physical line accounted for, clear rejects, no crash."""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import UTC, datetime

import pytest
from privacy_pipeline import catalog
from privacy_pipeline.errors import ConfigurationError
from privacy_pipeline.intake import InputSource, IntakeOptions, read_requests
from privacy_pipeline.report import build_report, check_accounting, write_rejects_csv
from privacy_pipeline.values import mixed_scripts, normalise_key

from .helpers import HEADER, read, source

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
OPTIONS = IntakeOptions(default_include=("analytics",), now=NOW)
HEADER5 = "request_id,action,regulation,namespace,value"


def keys(result) -> list[str]:
    return [s.key for s in result.subjects]


def lines_add_up(result) -> None:
    counts = result.line_counts()
    assert counts["lines_read"] == counts["lines_header"] + counts["lines_blank"] + counts["lines_in_records"]
    assert result.accounting_gap() == 0


def test_the_issue_reproducer_a_stray_quote_swallows_nothing():
    result = read(f'{HEADER5}\nr1,access,gdpr,ECID,"111\nr2,access,gdpr,ECID,222\nr3,access,gdpr,ECID,333\n',
                  options=OPTIONS)
    assert keys(result) == ["r2", "r3"]
    assert [s.identities[0].value for s in result.subjects] == ["222", "333"]
    (reject,) = result.rejects
    assert (reject.row, reject.line, reject.field, reject.request_id) == (1, 2, "value", "r1")
    assert "lines 2-4" in reject.reason
    assert result.line_counts() == {"lines_read": 4, "lines_header": 1, "lines_blank": 0, "lines_in_records": 3}


def test_a_closing_quote_later_never_lets_one_subject_carry_another_row():
    text = (f"{HEADER5}\n"
            'r1,access,gdpr,ECID,"111\n'
            "r2,access,gdpr,ECID,222\n"
            'r3,access,gdpr,ECID,333"\n'
            "r4,access,gdpr,ECID,444\n")
    result = read(text, options=OPTIONS)
    assert "r1" not in keys(result) and "r2" in keys(result) and "r4" in keys(result)
    assert all("\n" not in i.value for s in result.subjects for i in s.identities)
    lines_add_up(result)


def test_the_demo_sample_with_one_stray_quote_reads_every_other_row(tmp_path):
    from privacy_pipeline.sample import generate_requests_csv

    path = tmp_path / "sample.csv"
    generate_requests_csv(path, 300, bad_fraction=0.0, seed=5, received_until=NOW)
    lines = path.read_text().splitlines()
    cells = lines[5].split(",")
    cells[7] = '"' + cells[7]  # a quote opening row 5's include cell, never closed
    lines[5] = ",".join(cells)
    result = read("\n".join(lines) + "\n", options=OPTIONS)
    swallower = next(r for r in result.rejects if r.line == 6)
    assert "lines 6-301" in swallower.reason and result.rows_read == 300
    # Only the broken row's own request is rejected (all or nothing); every other row is in a subject.
    assert {r.request_id for r in result.rejects} == {swallower.request_id}
    assert sum(len(s.rows) for s in result.subjects) == 300 - len(result.rejects)
    lines_add_up(result)


@pytest.mark.parametrize("end", ["\r", "\r\n", "\n"])
def test_json_lines_with_any_line_end(end):
    user = {"key": "j1", "action": ["access"], "regulation": "gdpr",
            "userIDs": [{"namespace": "ECID", "value": "1", "type": "standard"}]}
    records = [json.dumps({**user, "key": f"j{n}"}) for n in range(1, 4)]
    mixed = records[0] + end + records[1] + "\r\n" + end + records[2] + "\r"
    result = read(mixed, name="in.jsonl", options=OPTIONS)
    assert keys(result) == ["j1", "j2", "j3"]
    assert result.line_counts()["lines_read"] == 4 and result.line_counts()["lines_blank"] == 1
    lines_add_up(result)


def test_a_field_or_header_cell_over_128_kib_is_a_reject_naming_line_and_field():
    huge = "x" * (128 * 1024 + 1)
    result = read(f"{HEADER}\nr1,access,gdpr,ECID,{huge},,,\nr2,access,gdpr,ECID,2,,,\n", options=OPTIONS)
    (reject,) = result.rejects
    assert (reject.line, reject.field) == (2, "value") and "128 KiB" in reject.reason
    assert keys(result) == ["r2"]
    result = read(f"{HEADER},{huge}\nr1,access,gdpr,ECID,1,,,,\n", options=OPTIONS)
    (reject,) = result.rejects
    assert reject.row == 0 and reject.line == 1 and "header cell 9 (line 1)" in reject.reason
    lines_add_up(result)


def test_a_long_quoted_field_spanning_lines_keeps_every_later_line_number():
    text = f'{HEADER}\nr1,access,gdpr,ECID,"{"y" * 200_000}\n\nmore",,,\nr2,access,gdpr,ECID,bad@,,,\n'.replace(
        "bad@", "2")
    text += "r3,erase,gdpr,ECID,3,,,\n"
    result = read(text, options=OPTIONS)
    by_key = {r.request_id: r for r in result.rejects}
    assert by_key["r3"].line == 6 and by_key["r1"].line == 2
    lines_add_up(result)


@pytest.mark.parametrize("name", ["deep.jsonl", "deep.json"])
def test_json_nested_a_thousand_levels_is_a_reject_not_a_recursion_error(name):
    deep = "[" * 100_000 + "]" * 100_000
    good = json.dumps({"key": "j1", "action": "access", "regulation": "gdpr",
                       "userIDs": [{"namespace": "ECID", "value": "1", "type": "standard"}]})
    text = f"{deep}\n{good}\n" if name.endswith("l") else f"[{deep}, {good}]"
    result = read(text, name=name, options=OPTIONS)
    assert result.rejects and "nested too deeply" in result.rejects[0].reason
    if name.endswith("l"):
        assert keys(result) == ["j1"] and result.rejects[0].line == 1
    lines_add_up(result)


@pytest.mark.parametrize(("value", "reason"), [
    ("-1", "ISO-8601"), ("-2025-06-01", "ISO-8601"), ("9999-12-31", "future"), ("0000-01-01", "before 2000"),
    ("1999-12-31", "before 2000"), ("2026-12-02", "future"), ("2025-02-30", "ISO-8601"),
])
def test_impossible_receipt_dates_are_rejects_with_a_reason(value, reason):
    result = read(f"{HEADER}\nr1,access,gdpr,ECID,1,,{value},\nr2,access,gdpr,ECID,2,,2026-12-01T06:00:00Z,\n",
                  options=OPTIONS)
    (reject,) = result.rejects
    assert reject.field == "received_at" and reason in reject.reason and reject.line == 2
    assert keys(result) == ["r2"]  # within a day of the run's clock: a time zone, not a placeholder


def test_rejects_csv_neutralises_formula_header_cells():
    header = HEADER + ',=HYPERLINK("http://x"),@SUM(1+1),-,+1+1'
    result = read(f"{header}\nr1,erase,gdpr,ECID,1,,,,a,b,c,d\n", options=OPTIONS)
    buffer = io.BytesIO()
    write_rejects_csv(result.rejects, buffer)
    written_header = next(csv.reader(io.StringIO(buffer.getvalue().decode())))
    assert written_header[-4:] == ["'=hyperlink(\"http://x\")", "'@sum(1+1)", "'-", "'+1+1"]


def test_one_unreadable_file_does_not_stop_the_others(monkeypatch):
    from privacy_pipeline import csv_format

    def explode(*args, **kwargs):
        raise MemoryError("secret@example.com")  # the message must not reach the reject

    good = source("b.csv", f"{HEADER}\nr2,access,gdpr,ECID,2,,,\n")
    bad = source("a.csv", f"{HEADER}\nr1,access,gdpr,ECID,1,,,\n")
    real = csv_format._parse_body
    monkeypatch.setattr(csv_format, "_parse_body", lambda data, *a: explode() if b"r1" in data else real(data, *a))
    result = read_requests([bad, good], OPTIONS)
    assert keys(result) == ["r2"]
    (reject,) = result.rejects
    assert reject.source == "a.csv" and reject.row == 0 and "MemoryError" in reject.reason
    assert "secret" not in reject.reason
    lines_add_up(result)


@pytest.mark.parametrize(("data", "reason"), [
    (HEADER.encode("utf-16") + b"\n", "not UTF-8 text"),
    (HEADER.encode("utf-16-le"), "not UTF-8 text"),
    (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "not a CSV"),
    (b"PK\x03\x04" + b"\x00" * 40, "not a CSV"),
    (b"ab\x00\x01\x02\xff" * 50, "not a CSV"),
    ("r\u00e9quest_id,action\n".encode("latin-1"), "not UTF-8 text"),
])
def test_non_text_files_are_rejected_saying_what_they_are(data, reason):
    for payload in (data, gzip.compress(data)):
        (reject,) = read(payload, options=OPTIONS).rejects
        assert reject.row == 0 and reason in reject.reason and "missing required" not in reject.reason


def test_look_alike_keys_are_normalised_or_rejected():
    assert normalise_key("\u00a0r\u200b1\ufeff ") == "r1" and normalise_key("\uff52\uff11") == "r1"
    assert mixed_scripts("r\u04351") == ["CYRILLIC", "LATIN"] and mixed_scripts("\u0440\u0435") == []
    result = read(f"{HEADER}\nr1,access,gdpr,ECID,1,,,\nr1\u200b,access,gdpr,ECID,2,,,\n"
                  f"\u00a0r1,access,gdpr,ECID,3,,,\nr\u04351,access,gdpr,ECID,4,,,\nr\x015,access,gdpr,ECID,5,,,\n",
                  options=OPTIONS)
    (subject,) = result.subjects
    assert subject.key == "r1" and len(subject.identities) == 3
    reasons = {r.line: r.reason for r in result.rejects}
    assert "mixes Cyrillic and Latin" in reasons[5] and "control characters" in reasons[6]


# ------------------------------------------------------------------------------ configuration


def test_an_unknown_product_in_the_include_param_fails_fast_naming_the_allowed_ones():
    with pytest.raises(ConfigurationError) as caught:
        IntakeOptions(default_include=("photoshop",))
    assert caught.value.setting == "include" and "analytics" in caught.value.allowed
    assert "photoshop" in str(caught.value)


def test_an_unknown_regulation_param_fails_fast():
    assert catalog.require_regulation("GDPR") == "gdpr"
    for value in ("gdrp", "cpra_usa"):
        with pytest.raises(ConfigurationError) as caught:
            catalog.require_regulation(value, setting="regulation")
        assert caught.value.setting == "regulation" and "tipa_tn_usa" in caught.value.allowed


def test_the_catalogue_has_the_current_seed_list():
    assert {"tipa_tn_usa", "mcdpa_mn_usa", "modpa_md_usa", "pipa_kor"} <= catalog.REGULATIONS


def test_extra_regulations_from_a_variable_are_accepted_and_named_in_reasons():
    extra = catalog.with_extra_regulations('{"dpdpa_ind": 90}')
    assert extra.deadline_days("dpdpa_ind") == 90 and catalog.deadline_days("dpdpa_ind", 30, extra) == 90
    rows = f"{HEADER}\nr1,access,dpdpa_ind,ECID,1,,,\n"
    assert keys(read(rows, options=IntakeOptions(default_include=("analytics",), regulations=extra))) == ["r1"]
    (reject,) = read(rows, options=OPTIONS).rejects
    assert catalog.EXTRA_REGULATIONS_SETTING in reject.reason


@pytest.mark.parametrize("bad", ["[1]", "{not json", '{"dpdpa_ind": 0}', '{"dpdpa_ind": true}',
                                 '{"DPDPA": 30}', '{"cpra_usa": 45}', '{"x y": 3}'])
def test_a_malformed_extra_regulations_variable_names_the_setting(bad):
    with pytest.raises(ConfigurationError) as caught:
        catalog.with_extra_regulations(bad)
    assert caught.value.setting == "privacy_extra_regulations"


def test_the_report_fails_loudly_when_lines_do_not_add_up():
    intake = {"rows_read": 1, "rows_rejected": 1, "rows_in_subjects": 0, "subjects": 0,
              "lines_read": 5, "lines_header": 1, "lines_blank": 1, "lines_in_records": 2}
    report = build_report(intake=intake, submissions=[], job_records=[], rejects_key="r", jobs_key="j")
    with pytest.raises(Exception, match="lines_read must equal"):
        check_accounting(report)
    check_accounting({**report, "lines_read": 4})


def test_line_counts_survive_several_sources_and_whole_file_rejects():
    result = read_requests([
        source("a.csv", f"\n{HEADER}\r\n\r\nr1,access,gdpr,ECID,1,,,\r"),
        source("b.csv", b"\x89PNG\r\n\x1a\n\x00\x00\n"),
        InputSource("c.jsonl", lambda: io.BytesIO(b"{}\n\n")),
    ], OPTIONS)
    assert result.line_counts() == {"lines_read": 4 + 3 + 2, "lines_header": 1, "lines_blank": 3,
                                     "lines_in_records": 1 + 3 + 1}
    lines_add_up(result)
