"""Work-order planning: one order per namespace, deterministic, split at the order limit, found again."""

from __future__ import annotations

from privacy_pipeline.models import Identity, Subject
from privacy_pipeline.workorders import (
    find_existing,
    identities_in,
    is_final,
    plan_orders,
    quota_verdict,
    status_word,
)


def subject(key: str, *ids: tuple[str, str]) -> Subject:
    return Subject(key=key, actions=("delete",), regulation="gdpr", include=("aepDataLake",),
                   identities=tuple(Identity(ns, value) for ns, value in ids))


SUBJECTS = [
    subject("r1", ("email", "a@example.com"), ("ECID", "111")),
    subject("r2", ("email", "b@example.com")),
    subject("r3", ("Loyalty ID", "LA00000007"), ("email", "a@example.com")),  # shares a value with r1
]


def test_one_order_per_namespace_with_unique_values_and_their_request_keys():
    plans = plan_orders("b-1", SUBJECTS)
    assert [(p.namespace, p.ids, p.request_keys) for p in plans] == [
        ("ECID", ("111",), ("r1",)),
        ("Loyalty ID", ("LA00000007",), ("r3",)),
        ("email", ("a@example.com", "b@example.com"), ("r1", "r2", "r3")),
    ]
    assert identities_in(plans) == 4
    body = plans[2].payload()
    assert body["action"] == "delete_identity" and body["datasetId"] == "ALL"
    assert body["namespacesIdentities"] == [{"namespace": {"code": "email"}, "IDs": ["a@example.com", "b@example.com"]}]
    assert body["displayName"] == "airflow-privacy b-1 email 0"


def test_plans_are_deterministic_and_split_past_the_limit():
    many = [subject(f"k{i}", ("email", f"u{i}@example.com")) for i in range(25)]
    plans = plan_orders("b-2", reversed(many), max_identities=10)
    assert [len(p.ids) for p in plans] == [10, 10, 5]
    assert [p.display_name for p in plans] == [f"airflow-privacy b-2 email {i}" for i in range(3)]
    assert plans == plan_orders("b-2", many, max_identities=10)
    assert sorted(k for p in plans for k in p.request_keys) == sorted(s.key for s in many)


def test_a_retry_adopts_the_order_an_earlier_attempt_created():
    plan = plan_orders("b-1", SUBJECTS)[0]
    listed = [{"workorderId": "DI-x", "displayName": "airflow-privacy b-1 ECID 1"},
              {"workorderId": "DI-y", "displayName": plan.display_name}]
    assert find_existing(plan, listed)["workorderId"] == "DI-y"
    assert find_existing(plan, listed[:1]) is None


def test_statuses_map_to_our_words():
    assert status_word({"status": "completed"}) == "complete" and is_final({"status": "completed"})
    assert status_word({"status": "failed"}) == "error" and is_final({"status": "failed"})
    assert status_word({"status": "ingested"}) == "ingested" and not is_final({"status": "ingested"})


def test_quota_verdict_reads_adobes_quota_body():
    quota = {"quotas": [
        {"name": "dailyConsumerDeleteIdentitiesQuota", "consumed": 999_000, "quota": 1_000_000},
        {"name": "monthlyConsumerDeleteIdentitiesQuota", "consumed": 10, "quota": 2_000_000},
        {"name": "datasetExpirationQuota", "consumed": 0, "quota": 1},
    ]}
    assert quota_verdict(quota, 1000).fits
    verdict = quota_verdict(quota, 1001)
    assert not verdict.fits and verdict.remaining == 1000 and "1001 identities wanted, 1000 left" in verdict.reason
    assert quota_verdict({"quotas": []}, 10**9).fits
