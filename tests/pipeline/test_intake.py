"""Intake: every validation rule names its row and field; formats; accounting."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime

import pytest
from privacy_pipeline import catalog
from privacy_pipeline.intake import IntakeOptions, consent_payloads, read_requests, split_opt_outs
from privacy_pipeline.models import Identity

from .helpers import HEADER, csv_text, read, source, subject

GOOD = "r1,access,gdpr,email,a@example.com,standard,2025-06-01T10:00:00Z,"


def only_reject(result):
    assert len(result.rejects) == 1, [(r.row, r.field, r.reason) for r in result.rejects]
    return result.rejects[0]


def test_good_rows_group_into_subjects_with_canonical_values():
    result = read(csv_text(
        "r1,access|delete,GDPR,Email, a@example.com ,,2025-06-01T10:00:00Z,Analytics|profileservice",
        "r1,delete|access,gdpr,ecid,12345678901234567890,standard,2025-06-01T10:00:00Z,profileService|analytics",
        "r2,delete,ccpa,ECID,999,,,",
    ))
    assert not result.rejects
    first, second = result.subjects
    assert first.key == "r1"
    assert first.actions == ("access", "delete")
    assert first.regulation == "gdpr"
    assert first.include == ("analytics", "profileService")
    assert first.identities == (Identity("Email", "a@example.com", "standard"),
                                Identity("ECID", "12345678901234567890", "standard"))
    assert first.received_at == datetime(2025, 6, 1, 10, tzinfo=UTC)
    assert first.rows == (1, 2)
    assert second.include == ("analytics",)  # the run's default products
    assert second.received_at is None
    assert result.sources[0].format == "csv" and result.sources[0].rows_read == 3


@pytest.mark.parametrize(
    ("row", "field", "reason_part"),
    [
        ("r1,access,gdrp,email,a@example.com,,,", "regulation", "unknown regulation 'gdrp'"),
        ("r1,access,cpra_usa,email,a@example.com,,,", "regulation", "'cpra_ca_usa'"),
        ("r1,erase,gdpr,email,a@example.com,,,", "action", "action 'erase' is not allowed"),
        ("r1,access|access,gdpr,email,a@example.com,,,", "action", "repeats"),
        ("r1,,gdpr,email,a@example.com,,,", "action", "action is empty"),
        ("r1,opt_out_of_sale,ccpa,email,a@example.com,,,", "action", "not allowed"),
        ("r1,access,gdpr,loyalty,L-1,,,", "namespace", "unknown standard namespace 'loyalty'"),
        ("r1,access,gdpr,,L-1,custom,,", "namespace", "namespace is empty"),
        ("r1,access,gdpr,loyalty,L-1,weird,,", "type", "unknown identity type 'weird'"),
        ("r1,access,gdpr,abc,L-1,namespaceId,,", "namespace", "numeric"),
        ("r1,access,gdpr,email,not-an-email,,,", "value", "not a valid email address"),
        ("r1,access,gdpr,email,a@@example.com,,,", "value", "not a valid email address"),
        ("r1,access,gdpr,ECID,   ,,,", "value", "value is empty"),
        (",access,gdpr,ECID,1,,,", "request_id", "request_id is empty"),
        ("r1,access,gdpr,ECID,1,,31/02/2025,", "received_at", "ISO-8601"),
        ("r1,access,gdpr,ECID,1,,,analytics|photoshop", "include", "unknown product 'photoshop'"),
        ("r1,access,gdpr,ECID,1,,,analytics||target", "include", "empty entry"),
    ],
)
def test_each_row_rule_rejects_with_row_line_and_field(row, field, reason_part):
    result = read(csv_text(GOOD.replace("r1", "ok"), row))
    reject = only_reject(result)
    assert (reject.row, reject.line, reject.field) == (2, 3, field)
    assert reason_part in reject.reason
    assert reject.raw["request_id"] == row.split(",")[0]
    assert [s.key for s in result.subjects] == ["ok"]


def test_legacy_regulation_is_mapped_when_the_run_opts_in():
    result = read(csv_text("r1,access,ucpa_usa,email,a@example.com,,,"),
                  options=IntakeOptions(default_include=("analytics",), map_legacy_regulations=True))
    assert result.subjects[0].regulation == "ucpa_ut_usa"


def test_reasons_never_echo_identity_like_values():
    result = read(csv_text("r1,access,someone@example.com,email,a@example.com,,,",
                           "r2,access,44363657679975868102109072127,email,b@example.com,,,"))
    assert len(result.rejects) == 2
    for reject in result.rejects:
        assert "example.com" not in reject.reason and "4436365" not in reject.reason


def test_more_than_nine_identities_rejects_every_row_of_the_subject():
    rows = [f"big,access,gdpr,ECID,{n},,," for n in range(10)]
    result = read(csv_text(*rows, GOOD))
    assert [s.key for s in result.subjects] == ["r1"]
    assert [r.row for r in result.rejects] == list(range(1, 11))
    assert all("10 identities" in r.reason and "at most 9" in r.reason for r in result.rejects)


def test_nine_identities_are_fine():
    result = read(csv_text(*[f"big,access,gdpr,ECID,{n},,," for n in range(9)]))
    assert len(result.subjects[0].identities) == 9


def test_exact_duplicates_keep_the_first_copy():
    result = read(csv_text(GOOD, "r1,access,gdpr,ECID,1,,2025-06-01T10:00:00Z,", GOOD, " r1 ,access,GDPR,Email,a@example.com,,2025-06-01T10:00:00Z,"))
    assert len(result.subjects[0].identities) == 2
    assert [(r.row, r.reason) for r in result.rejects] == [(3, "exact duplicate of row 1"),
                                                          (4, "exact duplicate of row 1")]


@pytest.mark.parametrize(
    ("second", "field"),
    [
        ("r1,access,ccpa,ECID,1,,2025-06-01T10:00:00Z,", "regulation"),
        ("r1,delete,gdpr,ECID,1,,2025-06-01T10:00:00Z,", "action"),
        ("r1,access,gdpr,ECID,1,,2025-06-02T10:00:00Z,", "received_at"),
        ("r1,access,gdpr,ECID,1,,2025-06-01T10:00:00Z,target", "include"),
    ],
)
def test_conflicting_rows_reject_the_whole_subject_naming_the_field(second, field):
    result = read(csv_text(GOOD, second))
    assert not result.subjects
    assert [r.row for r in result.rejects] == [1, 2]
    assert all(r.field == field and f"disagree on {field}" in r.reason for r in result.rejects)


def test_a_rejected_row_takes_its_request_with_it():
    result = read(csv_text(GOOD, "r1,access,gdpr,email,broken,,2025-06-01T10:00:00Z,"))
    assert not result.subjects
    sibling, bad = result.rejects
    assert (bad.row, bad.field) == (2, "value")
    assert (sibling.row, sibling.field) == (1, "request_id")
    assert "row 2" in sibling.reason


def test_malformed_lines_are_rejected_with_physical_line_and_take_their_request():
    text = HEADER + "\n\n" + "\n".join([
        GOOD,
        "r2,access,gdpr,ECID",                         # too few fields
        'r3,access,gdpr,ECID,"multi\nline",,,',        # a quoted line break in value: not a real value
        "r4,access,gdpr,ECID,1,,,,extra",               # too many fields
        "r2,access,gdpr,ECID,5,,,",                     # sibling of the malformed r2 row
    ]) + "\n"
    result = read(text)
    assert [s.key for s in result.subjects] == ["r1"]
    by_row = {r.row: r for r in result.rejects}
    assert set(by_row) == {2, 3, 4, 5, 6}
    assert by_row[2].field == "*" and "4 field(s)" in by_row[2].reason and by_row[2].line == 4
    assert (by_row[3].line, by_row[3].field, by_row[3].request_id) == (5, "value", "r3")
    assert "lines 5-6" in by_row[3].reason
    assert by_row[4].line == 6 and "4 field(s)" in by_row[4].reason  # the swallowed line, read on its own
    assert by_row[5].line == 7 and "9 field(s)" in by_row[5].reason
    assert by_row[6].line == 8 and "row 2" in by_row[6].reason
    assert result.sources[0].lines_read == 8


def test_a_stray_quote_in_a_free_text_column_cannot_swallow_the_next_request():
    result = read(csv_text(
        'r1,access,gdpr,ECID,1,,,,"note that never closes', "r2,access,gdpr,ECID,2,,,,",
        "r3,access,gdpr,ECID,3,,,,", header=HEADER + ",notes",
    ))
    assert [s.key for s in result.subjects] == ["r2", "r3"]
    reject = only_reject(result)
    assert (reject.line, reject.field, reject.request_id) == (2, "notes", "r1") and "lines 2-4" in reject.reason
    assert result.line_counts() == {"lines_read": 4, "lines_header": 1, "lines_blank": 0, "lines_in_records": 3}


def test_bad_utf8_rejects_only_the_affected_rows():
    data = (csv_text(GOOD, "r2,access,gdpr,ECID,1,,,", "r3,access,gdpr,ECID,2,,,").encode()
            .replace(b"ECID,1", b"ECID,\xff\xfe1"))
    result = read(data)
    reject = only_reject(result)
    assert (reject.row, reject.field) == (2, "value") and "UTF-8" in reject.reason
    assert [s.key for s in result.subjects] == ["r1", "r3"]


def test_missing_header_columns_reject_the_file_once_at_row_zero():
    result = read("request_id,action,namespace,value\nr1,access,email,a@example.com\n")
    reject = only_reject(result)
    assert (reject.row, reject.field) == (0, "file")
    assert "regulation" in reject.reason
    assert result.rows_read == 1 and result.sources[0].file_error


@pytest.mark.parametrize("data", [b"", HEADER.encode() + b"\n", b"\xef\xbb\xbf" + HEADER.encode()])
def test_a_file_without_rows_is_not_an_error(data):
    result = read(data)
    assert (result.rows_read, result.subjects, result.rejects) == (0, [], [])


def test_header_is_case_and_space_insensitive_and_optional_columns_may_be_missing():
    result = read(" Request_ID , ACTION,regulation,namespace,value\nr1,access,gdpr,ECID,1\n")
    assert result.subjects[0].identities == (Identity("ECID", "1", "standard"),)


def test_gzip_is_recognised_by_content_and_hashed_as_stored():
    data = gzip.compress(csv_text(GOOD).encode())
    result = read(data, name="s3://bucket/in/requests.csv.gz")
    assert result.subjects[0].key == "r1"
    import hashlib

    assert result.sources[0].sha256 == hashlib.sha256(data).hexdigest()


def test_corrupt_gzip_rejects_the_file():
    reject = only_reject(read(b"\x1f\x8b\x08\x00broken", name="x.csv.gz"))
    assert reject.row == 0 and "gzip" in reject.reason


def jsonl(*records) -> str:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n"


USER = {"key": "j1", "action": ["access", "delete"], "regulation": "gdpr",
        "userIDs": [{"namespace": "email", "value": "a@example.com", "type": "standard"},
                    {"namespace": "ECID", "value": "123", "type": "standard"}]}


@pytest.mark.parametrize("name", ["in.jsonl", "in.ndjson", "in.json", "no-extension"])
def test_json_lines_in_adobe_users_shape(name):
    result = read(jsonl(USER, {**USER, "key": "j2", "include": ["target"], "received_at": "2025-06-01"}), name=name)
    first, second = result.subjects
    assert first.actions == ("access", "delete") and len(first.identities) == 2 and first.rows == (1,)
    assert second.include == ("target",) and second.received_at == datetime(2025, 6, 1, tzinfo=UTC)
    assert result.sources[0].format == "jsonl"


def test_json_lines_rejects_name_row_and_field():
    lines = jsonl(
        USER,
        "{not json",
        {**USER, "key": "j3", "regulation": None},
        {**USER, "key": "j4", "userIDs": []},
        {**USER, "key": "j5", "userIDs": [{"namespace": "ECID", "value": 123, "type": "standard"}]},
        {**USER, "key": "j6", "userIDs": [*USER["userIDs"], {"namespace": "email", "value": "bad", "type": "standard"}]},
        [1, 2],
        USER,
    )
    result = read(lines, name="x.jsonl")
    assert [s.key for s in result.subjects] == ["j1"]
    got = {r.row: (r.field, r.reason) for r in result.rejects}
    assert got[2] == ("*", "line is not valid JSON")
    assert got[3][0] == "regulation"
    assert got[4][0] == "userIDs"
    assert got[5] == ("userIDs[0].value", "userIDs[0].value must be a string")
    assert got[6] == ("value", "not a valid email address")
    assert got[7] == ("*", "line is not a JSON object")
    assert got[8] == ("*", "exact duplicate of row 1")
    assert result.rejects[0].raw["json"] == "{not json"


def test_json_array_file():
    result = read(json.dumps([USER, {**USER, "key": "j2"}]), name="in.json")
    assert [s.key for s in result.subjects] == ["j1", "j2"]


def test_json_array_rejects_name_the_line_of_their_element():
    text = "[\r\n" + json.dumps(USER) + ",\n\n  " + json.dumps({**USER, "key": "j2", "regulation": "nope"}) + "\r]"
    (reject,) = read(text, name="in.json").rejects
    assert (reject.row, reject.line, reject.field) == (2, 4, "regulation")


def test_a_key_accepted_from_one_source_is_rejected_in_the_next():
    result = read_requests([source("a.csv", csv_text(GOOD)), source("b.csv", csv_text(GOOD))],
                           IntakeOptions(default_include=("analytics",)))
    assert len(result.subjects) == 1
    reject = only_reject(result)
    assert reject.source == "b.csv" and "a.csv" in reject.reason
    assert result.rows_read == 2


def test_opt_out_rows_need_the_run_to_allow_them_and_build_consent_bodies():
    options = IntakeOptions(default_include=("analytics",),
                            allowed_actions=(*catalog.JOB_ACTIONS, catalog.OPT_OUT_OF_SALE))
    result = read(csv_text(
        "o1,opt_out_of_sale,ccpa,email,a@example.com,,,",
        "o1,opt_out_of_sale,ccpa,ECID,1,,,",
        "o2,opt_out_of_sale,ccpa,email,a@example.com,,,",
        "o3,opt_out_of_sale|access,ccpa,email,c@example.com,,,",
        GOOD,
    ), options=options)
    jobs, opt_outs = split_opt_outs(result.subjects)
    assert [s.key for s in jobs] == ["r1"] and [s.key for s in opt_outs] == ["o1", "o2"]
    assert "cannot be combined" in only_reject(result).reason
    assert consent_payloads(result.subjects) == [{
        "optOutOfSale": True,
        "entities": [{"nameSpace": "Email", "values": ["a@example.com"]}, {"nameSpace": "ECID", "values": ["1"]}],
    }]


def test_consent_payloads_split_at_the_value_limit_and_refuse_custom_namespaces():
    opt_out = subject("o", actions=(catalog.OPT_OUT_OF_SALE,), identities=5)
    payloads = consent_payloads([opt_out], max_values_per_request=2)
    assert [sum(len(e["values"]) for e in p["entities"]) for p in payloads] == [2, 2, 1]
    custom = subject("c", actions=(catalog.OPT_OUT_OF_SALE,))
    custom = type(custom)(**{**{f: getattr(custom, f) for f in custom.__dataclass_fields__},
                             "identities": (Identity("loyalty", "L1", "custom"),)})
    with pytest.raises(ValueError, match="standard namespaces only"):
        consent_payloads([custom])


def test_sample_file_is_fully_accounted(tmp_path):
    from privacy_pipeline.sample import generate_requests_csv

    path = tmp_path / "sample.csv"
    summary = generate_requests_csv(path, 3000, bad_fraction=0.2, seed=5,
                                    received_until=datetime(2025, 6, 1, tzinfo=UTC))
    assert sum(1 for _ in path.open()) == 3001
    result = read(path.read_bytes(), name=str(path))
    assert result.rows_read == 3000
    assert len(result.rejects) >= sum(summary.bad_rows.values())
    assert {r.field for r in result.rejects} >= {"regulation", "value", "*", "request_id"}
    assert generate_requests_csv(tmp_path / "again.csv", 3000, bad_fraction=0.2, seed=5,
                                 received_until=datetime(2025, 6, 1, tzinfo=UTC)) == summary
    assert (tmp_path / "again.csv").read_bytes() == path.read_bytes()
