"""Subjects as a table or as objects (put in columns by `subject_table`) plan and dump byte-identically."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from privacy_pipeline.batching import dump_batch, load_batch, plan_batches
from privacy_pipeline.intake import IntakeOptions, read_requests
from privacy_pipeline.models import Identity, Subject, SubjectTable
from privacy_pipeline.sample import generate_requests_csv

from .helpers import csv_text, read, source

# Values JSON must escape (quote, backslash, control characters) next to ones it must not (non-ASCII).
AWKWARD = csv_text(
    'q1,access,gdpr,ECID,"say ""hi""",,2025-06-01T10:00:00.123456Z,',
    "q1,access,gdpr,ECID,back\\slash,,2025-06-01T10:00:00.123456Z,",
    'q2,delete,ccpa,ECID,"tab\there",,,target',
    'q3,access|delete,gdpr,ECID,plain-3,,2025-06-01,',  # line breaks and other controls are rejects
    "é-key,access,gdpr,ECID,ünïcødé ✓,custom,,",
    'q4,access,gdpr,ECID,\u2028sep,,,',  # a quote in a key is a reject
)


def assert_same_as_object_path(table: SubjectTable, max_subjects: int = 1000) -> list:
    columnar = plan_batches(table, max_subjects=max_subjects)
    objects = plan_batches(list(table), max_subjects=max_subjects)
    assert [b.batch_id for b in columnar] == [b.batch_id for b in objects]
    assert columnar == objects
    for fast, slow in zip(columnar, objects, strict=True):
        assert isinstance(fast.subjects, SubjectTable)
        assert dump_batch(fast) == dump_batch(slow)
        assert load_batch(dump_batch(fast)) == fast
        assert (fast.jobs_expected, fast.rows_total, fast.user_actions) == (
            slow.jobs_expected, slow.rows_total, slow.user_actions)
    return columnar


def test_sample_file_plans_and_dumps_identically(tmp_path):
    path = tmp_path / "sample.csv"
    generate_requests_csv(path, 4000, bad_fraction=0.2, seed=3, received_until=datetime(2025, 6, 1, tzinfo=UTC))
    result = read(path.read_bytes(), name=str(path))
    assert isinstance(result.subjects, SubjectTable) and len(result.subjects) > 1000
    batches = assert_same_as_object_path(result.subjects, max_subjects=70)
    assert sum(len(b.subjects) for b in batches) == len(result.subjects)


def test_values_that_need_json_escapes_dump_identically():
    result = read(AWKWARD)
    assert not result.rejects, [(r.row, r.reason) for r in result.rejects]
    assert_same_as_object_path(result.subjects)
    staged = {subject[0]: subject for batch in plan_batches(result.subjects)
              for subject in json.loads(dump_batch(batch))["subjects"]}
    assert staged["q1"][3] == "2025-06-01T10:00:00.123456+00:00" and staged["q2"][3] is None
    assert staged["q1"][2] == [["ECID", 'say "hi"', "standard"], ["ECID", "back\\slash", "standard"]]


def test_json_lines_subjects_list_each_record_row_once():
    user = {"key": "j1", "action": ["access"], "regulation": "gdpr",
            "userIDs": [{"namespace": "ECID", "value": "1"}, {"namespace": "ECID", "value": "2"}]}
    text = "\n".join(json.dumps({**user, "key": key}) for key in ("j2", "j1", "j3")) + "\n"
    result = read(text, name="in.jsonl")
    assert [s.rows for s in result.subjects] == [(1,), (2,), (3,)]
    assert_same_as_object_path(result.subjects)


def test_several_sources_keep_their_names_and_reject_a_reused_key():
    first = csv_text("a1,access,gdpr,ECID,1,,,", "shared,access,gdpr,ECID,2,,,")
    second = csv_text("b1,delete,gdpr,ECID,3,,,", "shared,access,gdpr,ECID,4,,,", "b2,access,gdpr,ECID,5,,,")
    result = read_requests([source("one.csv", first), source("two.csv", second)],
                           IntakeOptions(default_include=("analytics",)))
    assert [(s.key, s.source, s.rows) for s in result.subjects] == [
        ("a1", "one.csv", (1,)), ("shared", "one.csv", (2,)), ("b1", "two.csv", (1,)), ("b2", "two.csv", (3,))]
    assert [(r.source, r.row, r.field) for r in result.rejects] == [("two.csv", 2, "request_id")]
    (batch,) = assert_same_as_object_path(result.subjects)
    assert json.loads(dump_batch(batch))["sources"] == ["one.csv", "two.csv"]


def test_a_key_in_two_concatenated_tables_is_refused():
    one = read(csv_text("k,access,gdpr,ECID,1,,,")).subjects
    two = read(csv_text("k,delete,gdpr,ECID,2,,,")).subjects
    with pytest.raises(ValueError, match="twice"):
        plan_batches(SubjectTable.concat([one, two]))


def test_table_is_a_sequence_of_subjects_that_never_shows_identities():
    table = read(csv_text("r1,access,gdpr,email,secret@example.com,,,", "r2,delete,gdpr,ECID,7,,,")).subjects
    assert len(table) == 2 and table[-1].key == "r2" and [s.key for s in table[::-1]] == ["r2", "r1"]
    assert table == list(table) and table[1:] == [table[1]] and table != [table[0]]
    assert "secret" not in repr(table) and "secret" not in repr(plan_batches(table))
    with pytest.raises(IndexError):
        table[2]
    assert SubjectTable.empty() == [] and plan_batches(SubjectTable.empty()) == []


def _reference_dump(batch) -> bytes:
    """The staged batch format written out with `json.dumps` alone: the definition the columnar dump must match."""
    sources: list[str] = []
    rows = []
    for s in batch.subjects:
        if s.source not in sources:
            sources.append(s.source)
        rows.append([s.key, list(s.actions), [[i.namespace, i.value, i.type] for i in s.identities],
                     s.received_at.isoformat() if s.received_at else None, sources.index(s.source), list(s.rows)])
    shape = batch.shape
    document = {"version": 1, "batch_id": batch.batch_id,
                "shape": {"regulation": shape.regulation, "include": list(shape.include), "priority": shape.priority,
                          "expand_ids": shape.expand_ids, "merge_policy_id": shape.merge_policy_id},
                "sources": sources, "subjects": rows}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


@pytest.mark.parametrize("stamps", [
    # intake's own kind (whole-second UTC), the kind Arrow formats in one call, with an absent one
    [datetime(2025, 6, 1, 10, 0, 0, tzinfo=UTC), None, datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)],
    # anything else is formatted one by one: sub-second, another offset, naive, a year below 1000
    [datetime(2025, 6, 1, 10, 0, 0, 5, tzinfo=UTC), datetime(2025, 6, 1, tzinfo=UTC)],
    [datetime(2025, 6, 1, 12, tzinfo=timezone(timedelta(hours=2))), datetime(2025, 6, 1, tzinfo=UTC)],
    [datetime(2025, 6, 1, 12), None],
    [datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC), datetime(2025, 6, 1, tzinfo=UTC)],
    [None, None],
])
def test_columnar_dump_matches_plain_json(stamps):
    values = ['say "hi"', "back\\slash", "tab\there", "nul\x00x", "\x1f", "ünïcødé ✓", "\u2028sep", "", "plain"]
    keys = ['k"1', "k\\2", "k\n3", "é-4", "k5", "k6"]
    subjects = [
        Subject(key=key, actions=("access",) if n % 2 else ("access", "delete"), regulation="gdpr",
                include=("analytics",),
                identities=tuple(Identity("ECID" if (n + j) % 2 else "email", values[(n + j) % len(values)],
                                          "standard" if j else "unregistered") for j in range(1 + n % 3)),
                received_at=stamps[n % len(stamps)], source=f"in-{n % 2}.csv", rows=(n + 1, n + 10))
        for n, key in enumerate(keys)
    ]
    for batches in (plan_batches(subjects, max_subjects=4), plan_batches(subjects)):
        for batch in batches:
            assert dump_batch(batch) == _reference_dump(batch)
            assert load_batch(dump_batch(batch)) == batch
