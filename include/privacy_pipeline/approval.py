"""When a person must approve destructive work before it is sent (the optional approval gate).

Deletes are irreversible. A deployment may ask for a human approval before delete submissions when one
of these conditions holds; the rules live in the Airflow Variable `privacy_approval_rules` (JSON), and
with no rules (the default) no run ever waits for a person:

- `first_run_of_regulation` (bool): the run submits deletes under a regulation never submitted before.
- `max_delete_subjects` (int): the run would submit more delete subjects than this.
- `resubmit_errored_deletes` (bool): reconcile would resubmit delete jobs that Adobe errored.
- `work_orders` (bool): every Data Lifecycle work order (record delete).

A rejected or timed-out approval postpones the batches to the next run; it never drops them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from privacy_pipeline.errors import ConfigurationError

SETTING = "privacy_approval_rules"
_BOOL_RULES = ("first_run_of_regulation", "resubmit_errored_deletes", "work_orders")
_INT_RULES = ("max_delete_subjects",)


@dataclass(frozen=True)
class ApprovalRules:
    first_run_of_regulation: bool = False
    max_delete_subjects: int | None = None
    resubmit_errored_deletes: bool = False
    work_orders: bool = False

    @property
    def enabled(self) -> bool:
        return any((self.first_run_of_regulation, self.max_delete_subjects is not None,
                    self.resubmit_errored_deletes, self.work_orders))


@dataclass(frozen=True)
class PendingWork:
    """What a run is about to send that the rules look at (counts and regulation codes only)."""

    delete_regulations: frozenset[str] = frozenset()
    known_regulations: frozenset[str] = frozenset()
    delete_subjects: int = 0
    resubmitted_deletes: int = 0
    work_orders: int = 0
    notes: tuple[str, ...] = field(default=())


def parse_rules(value: str | Mapping[str, Any] | None) -> ApprovalRules:
    """Rules from the Variable's value (JSON text or a dict); empty or absent means no approvals."""
    if value is None or value == "" or value == {}:
        return ApprovalRules()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise ConfigurationError(SETTING, value, hint=f"not JSON: {err.msg}") from None
    if not isinstance(value, Mapping):
        raise ConfigurationError(SETTING, value, hint="must be a JSON object")
    unknown = set(value) - set(_BOOL_RULES) - set(_INT_RULES)
    if unknown:
        raise ConfigurationError(SETTING, sorted(unknown)[0], allowed=(*_BOOL_RULES, *_INT_RULES))
    for name in _BOOL_RULES:
        if name in value and not isinstance(value[name], bool):
            raise ConfigurationError(f"{SETTING}.{name}", value[name], hint="true or false")
    limit = value.get("max_delete_subjects")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ConfigurationError(f"{SETTING}.max_delete_subjects", limit, hint="a whole number ≥ 0")
    return ApprovalRules(**{k: value[k] for k in value})


def approval_reasons(rules: ApprovalRules, work: PendingWork) -> list[str]:
    """Why this work needs a person's approval; an empty list means it goes without one."""
    reasons: list[str] = []
    if rules.first_run_of_regulation:
        new = sorted(work.delete_regulations - work.known_regulations)
        if new:
            reasons.append(f"first delete submission under regulation(s) {', '.join(new)}")
    if rules.max_delete_subjects is not None and work.delete_subjects > rules.max_delete_subjects:
        reasons.append(f"{work.delete_subjects} delete subjects exceed the limit of {rules.max_delete_subjects}")
    if rules.resubmit_errored_deletes and work.resubmitted_deletes:
        reasons.append(f"resubmission of {work.resubmitted_deletes} errored delete job(s)")
    if rules.work_orders and work.work_orders:
        reasons.append(f"{work.work_orders} Data Lifecycle work order(s)")
    return reasons


def regulations_of(batches: Iterable[Mapping[str, Any]], action: str = "delete") -> frozenset[str]:
    """The regulations of staged batches (intake's batch summaries) that carry `action`."""
    return frozenset(str(b["regulation"]) for b in batches
                     if action in (b.get("actions") or ()) and b.get("regulation"))
