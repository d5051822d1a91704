"""The approval gate's decision: off by default, each rule on its own, malformed rules fail at once."""

from __future__ import annotations

import pytest
from privacy_pipeline.approval import ApprovalRules, PendingWork, approval_reasons, parse_rules
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
