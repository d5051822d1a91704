"""The approval gate's decision: off by default, each rule on its own, malformed rules fail at once; what a
person is asked (counts, never values) and what anything but an approval holds back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from privacy_pipeline.approval import (
    APPROVE,
    NOT_REQUIRED,
    REJECT,
    TIMED_OUT,
    ApprovalRules,
    PendingWork,
    approval_reasons,
    delete_keys,
    gate_decision,
    gate_outcome,
    known_delete_regulations,
    parse_rules,
    question,
)
from privacy_pipeline.errors import ConfigurationError

WORK = PendingWork(delete_regulations=frozenset({"gdpr", "tipa_tn_usa"}), known_regulations=frozenset({"gdpr"}),
                   delete_subjects=1200, resubmitted_deletes=3, work_orders=2)


def test_no_rules_means_no_approval_whatever_the_work():
    for value in (None, "", "{}", {}):
        rules = parse_rules(value)
        assert not rules.enabled
        assert approval_reasons(rules, WORK) == []


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ({"first_run_of_regulation": True}, "first delete submission under regulation(s) tipa_tn_usa"),
        ({"max_delete_subjects": 1000}, "1200 delete subjects exceed the limit of 1000"),
        ({"resubmit_errored_deletes": True}, "resubmission of 3 errored delete job(s)"),
        ({"work_orders": True}, "2 Data Lifecycle work order(s)"),
    ],
)
def test_each_rule_alone(rules, expected):
    assert approval_reasons(parse_rules(rules), WORK) == [expected]


def test_rules_that_do_not_hold_ask_nothing():
    quiet = PendingWork(delete_regulations=frozenset({"gdpr"}), known_regulations=frozenset({"gdpr"}),
                        delete_subjects=1000)
    rules = parse_rules('{"first_run_of_regulation": true, "max_delete_subjects": 1000, '
                        '"resubmit_errored_deletes": true, "work_orders": true}')
    assert rules == ApprovalRules(True, 1000, True, True)
    assert approval_reasons(rules, quiet) == []


@pytest.mark.parametrize("value", ["{not json", "[1]", '{"max_deletes": 3}', '{"work_orders": "yes"}',
                                   '{"max_delete_subjects": -1}', '{"max_delete_subjects": true}'])
def test_malformed_rules_are_a_configuration_error_naming_the_variable(value):
    with pytest.raises(ConfigurationError, match="privacy_approval_rules"):
        parse_rules(value)


# -- the run's gate: decision, question, outcome -----------------------------------------------------------
DELETE_BATCHES = [{"batch_id": "b-1", "key": "runs/x/batches/b-1.json", "regulation": "gdpr", "delete_subjects": 3},
                  {"batch_id": "b-2", "key": "runs/x/batches/b-2.json", "regulation": "tipa_tn_usa",
                   "delete_subjects": 2}]
AT = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


def test_delete_keys_are_the_keys_with_a_delete_each_once():
    pairs = [("k2", "delete"), ("k1", "access"), ("k1", "delete"), ("k3", "access"), ("k2", "delete")]
    assert delete_keys(pairs) == ["k1", "k2"]
    assert delete_keys([("k3", "access")]) == []


def test_known_regulations_count_submitted_deletes_only_and_stop_reading_once_known():
    read = []

    def entries():
        for entry in [
            {"state": "submitted", "regulation": "ccpa", "user_actions": [["k", "access"]]},
            {"state": "postponed", "regulation": "lgpd_bra", "user_actions": [["k", "delete"]]},
            {"state": "intent", "regulation": "pdpa_tha", "user_actions": [["k", "delete"]]},
            {"state": "submitted", "regulation": "gdpr", "user_actions": [["k", "delete"]]},
            {"state": "submitted", "regulation": "ccpa", "user_actions": [["k", "delete"]]},
        ]:
            read.append(entry["regulation"])
            yield entry

    assert known_delete_regulations(entries()) == {"gdpr", "ccpa"}
    read.clear()
    assert known_delete_regulations(entries(), wanted={"gdpr"}) == {"gdpr"}
    assert read == ["ccpa", "lgpd_bra", "pdpa_tha", "gdpr"], "stops at the first entry that answers the question"


def test_the_decision_lists_the_held_batches_only_when_a_rule_holds():
    quiet = gate_decision(parse_rules({"max_delete_subjects": 5}), DELETE_BATCHES, {"gdpr"})
    assert quiet["reasons"] == [] and quiet["batches"] == [] and quiet["delete_subjects"] == 5
    loud = gate_decision(parse_rules({"first_run_of_regulation": True}), DELETE_BATCHES, {"gdpr"})
    assert loud["reasons"] == ["first delete submission under regulation(s) tipa_tn_usa"]
    assert [b["batch_id"] for b in loud["batches"]] == ["b-1", "b-2"], "every delete batch of the run is asked about"
    assert loud["new_regulations"] == ["tipa_tn_usa"] and loud["regulations"] == ["gdpr", "tipa_tn_usa"]
    assert gate_decision(parse_rules(None), DELETE_BATCHES)["reasons"] == []


def test_the_question_names_counts_reasons_and_regulations_and_nothing_else():
    decision = gate_decision(parse_rules({"max_delete_subjects": 1}), DELETE_BATCHES, set())
    text = question(decision)
    assert "**5** delete subject(s) in **2** batch(es)" in text
    assert "5 delete subjects exceed the limit of 1" in text and "gdpr, tipa_tn_usa" in text
    assert "b-1" not in text and "runs/x" not in text, "no batch ids or keys, let alone values"


def test_approve_holds_nothing_and_names_the_approver():
    decision = gate_decision(parse_rules({"max_delete_subjects": 1}), DELETE_BATCHES)
    outcome = gate_outcome(decision, {"chosen_options": [APPROVE], "responded_at": AT,
                                      "responded_by_user": {"id": "dpo", "name": "dpo"}})
    assert (outcome.decision, outcome.by, outcome.at, outcome.held) == (APPROVE, "dpo", AT.isoformat(), {})
    assert outcome.reasons == ("5 delete subjects exceed the limit of 1",)


@pytest.mark.parametrize(("answer", "expected", "by"), [
    ({"chosen_options": [REJECT], "responded_at": AT, "responded_by_user": {"id": "7", "name": "dpo"}}, REJECT, "dpo"),
    # the scheduler's timeout sweep answers with the defaults and no responder
    ({"chosen_options": [REJECT], "responded_at": AT, "responded_by_user": None}, TIMED_OUT, None),
    ({"chosen_options": [APPROVE], "responded_at": AT, "responded_by_user": None}, TIMED_OUT, None),
    (None, TIMED_OUT, None),  # the ask step failed: no answer is no approval
    ({"chosen_options": [APPROVE, REJECT], "responded_by_user": {"name": "x"}}, TIMED_OUT, "x"),
])
def test_anything_but_an_approval_holds_every_delete_batch_with_a_reason(answer, expected, by):
    decision = gate_decision(parse_rules({"max_delete_subjects": 1}), DELETE_BATCHES)
    outcome = gate_outcome(decision, answer)
    assert outcome.decision == expected and outcome.by == by
    assert sorted(outcome.held) == ["b-1", "b-2"]
    assert all("carried to the next run" in reason for reason in outcome.held.values())


def test_no_reasons_means_not_required_whatever_the_answer():
    decision = gate_decision(parse_rules(None), DELETE_BATCHES)
    assert gate_outcome(decision, {"chosen_options": [REJECT]}).as_xcom() == {
        "decision": NOT_REQUIRED, "by": None, "at": None, "held": {}, "reasons": []}


def test_work_orders_are_counted_only_where_the_dag_says_its_batches_are_work_orders():
    rules = parse_rules({"work_orders": True})
    assert gate_decision(rules, DELETE_BATCHES)["reasons"] == []
    hygiene = gate_decision(rules, DELETE_BATCHES, work_orders=len(DELETE_BATCHES))
    assert hygiene["reasons"] == ["2 Data Lifecycle work order(s)"]
    assert [b["batch_id"] for b in hygiene["batches"]] == ["b-1", "b-2"]


def test_deletes_of_retry_batches_are_resubmissions_wherever_they_are_sent():
    batches = [*DELETE_BATCHES, {"batch_id": "b-9.r2", "key": "k", "regulation": "gdpr", "delete_subjects": 4}]
    rules = parse_rules({"resubmit_errored_deletes": True})
    assert gate_decision(rules, batches)["reasons"] == ["resubmission of 4 errored delete job(s)"]
    assert gate_decision(rules, DELETE_BATCHES)["reasons"] == []
