"""Batching: shapes, limits, determinism, payloads, serialisation, chunking."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import pytest
from privacy_pipeline.batching import (
    JobShape,
    batch_payload,
    chunk_evenly,
    dump_batch,
    load_batch,
    plan_batches,
)

from .helpers import subject


def test_batches_group_by_shape_and_respect_the_limit():
    subjects = [subject(f"g{n:04d}") for n in range(2500)]
    subjects += [subject(f"c{n}", regulation="ccpa") for n in range(3)]
    subjects += [subject("low", priority="low"), subject("merge", merge_policy_id="124")]
    batches = plan_batches(subjects)
    sizes = [(b.shape.regulation, b.shape.priority, b.shape.merge_policy_id, len(b.subjects)) for b in batches]
    assert sizes == [("ccpa", "normal", None, 3), ("gdpr", "low", None, 1), ("gdpr", "normal", None, 1000),
                     ("gdpr", "normal", None, 1000), ("gdpr", "normal", None, 500), ("gdpr", "normal", "124", 1)]
    assert all(len({JobShape.of(s) for s in b.subjects}) == 1 for b in batches)
    assert sum(len(b.subjects) for b in batches) == len(subjects)


def test_plan_is_deterministic_whatever_the_input_order():
    subjects = [subject(f"k{n}", actions=("access", "delete")[: 1 + n % 2]) for n in range(2100)]
    shuffled = subjects[:]
    random.Random(1).shuffle(shuffled)
    first, second = plan_batches(subjects, max_subjects=700), plan_batches(shuffled, max_subjects=700)
    assert [b.batch_id for b in first] == [b.batch_id for b in second]
    assert first == second
    assert len({b.batch_id for b in first}) == 3 and all(b.batch_id.startswith("b-") for b in first)


def test_batch_id_changes_with_an_action_or_the_shape():
    base = plan_batches([subject("a"), subject("b")])[0].batch_id
    assert plan_batches([subject("a"), subject("b", actions=("delete",))])[0].batch_id != base
    assert plan_batches([subject("a", include=("target",)), subject("b", include=("target",))])[0].batch_id != base


@pytest.mark.parametrize(
    ("subjects", "message"),
    [
        ([subject("a", identities=10)], "1 to 9 identities"),
        ([subject("a", identities=0)], "1 to 9 identities"),
        ([subject("a", actions=("opt_out_of_sale",))], "not job actions"),
        ([subject("a"), subject("a", regulation="ccpa")], "twice"),
    ],
)
def test_subjects_adobe_would_refuse_are_not_planned(subjects, message):
    with pytest.raises(ValueError, match=message):
        plan_batches(subjects)


@pytest.mark.parametrize("max_subjects", [0, 1001])
def test_max_subjects_stays_within_adobes_limit(max_subjects):
    with pytest.raises(ValueError):
        plan_batches([subject("a")], max_subjects=max_subjects)


def test_payload_is_adobes_post_jobs_body():
    batch = plan_batches([subject("a", actions=("access", "delete"), identities=2, expand_ids=True,
                                  merge_policy_id="124", include=("analytics", "profileService"))])[0]
    payload = batch_payload(batch, "ORG@AdobeOrg")
    assert payload == {
        "companyContexts": [{"namespace": "imsOrgID", "value": "ORG@AdobeOrg"}],
        "users": [{"key": "a", "action": ["access", "delete"], "userIDs": [
            {"namespace": "Email", "value": "a.0@example.com", "type": "standard"},
            {"namespace": "Email", "value": "a.1@example.com", "type": "standard"}]}],
        "include": ["analytics", "profileService"],
        "expandIds": True,
        "priority": "normal",
        "regulation": "gdpr",
        "mergePolicyId": 124,
    }
    assert "mergePolicyId" not in batch_payload(plan_batches([subject("b")])[0], "ORG@AdobeOrg")
    assert batch.jobs_expected == 2 and batch.user_actions == [("a", "access"), ("a", "delete")]


def test_dump_and_load_round_trip_exactly():
    batch = plan_batches([subject("a", identities=3, received_at=None), subject("é", expand_ids=True)])
    for original in batch:
        restored = load_batch(dump_batch(original))
        assert restored == original
        assert dump_batch(restored) == dump_batch(original)


def test_load_refuses_a_batch_whose_content_does_not_match_its_id():
    document = json.loads(dump_batch(plan_batches([subject("a"), subject("b")])[0]))
    document["subjects"][0][1] = ["delete"]
    with pytest.raises(ValueError, match="does not match"):
        load_batch(json.dumps(document))
    with pytest.raises(ValueError):
        load_batch(b"{}")


@pytest.mark.parametrize(("count", "max_chunks"), [(0, 5), (3, 5), (1024, 1024), (1001, 1000), (10**6, 256)])
def test_chunk_evenly_keeps_order_and_balances(count, max_chunks):
    items = list(range(count))
    chunks = chunk_evenly(items, max_chunks)
    assert [x for chunk in chunks for x in chunk] == items
    assert len(chunks) == min(count, max_chunks)
    if chunks:
        assert max(map(len, chunks)) - min(map(len, chunks)) <= 1


def test_a_million_subjects_stay_under_airflows_map_limit():
    batch_ids = [f"b-{n}" for n in range(1000)]  # 1M subjects / 1000 per batch
    assert len(chunk_evenly(batch_ids, 1024)) <= 1024
    with pytest.raises(ValueError):
        chunk_evenly(batch_ids, 0)


def test_shape_of_subject():
    s = replace(subject("a"), priority="low")
    assert JobShape.of(s) == JobShape("gdpr", ("analytics",), "low", False, None)
