"""When a person must approve destructive work before it is sent (the optional approval gate).

Deletes are irreversible. A deployment may ask for a human approval before delete submissions when one
of these conditions holds; the rules live in the Airflow Variable `privacy_approval_rules` (JSON), and
with no rules (the default) no run ever waits for a person:

- `first_run_of_regulation` (bool): the run submits deletes under a regulation never submitted before.
- `max_delete_subjects` (int): the run would submit more delete subjects than this.
- `resubmit_errored_deletes` (bool): reconcile would resubmit delete jobs that Adobe errored.
- `work_orders` (bool): every Data Lifecycle work order (record delete).

A rejected or timed-out approval postpones the delete batches (every batch with a delete action) to the
next run, through the ledger's pending markers; it never drops them, and every other batch goes as usual.
The question a person sees names reasons, counts and regulation codes only, never a request's values.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
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


# ------------------------------------------------------------------------------- the run's gate

#: The two answers a person can give, and the one a timeout gives (HITL `defaults`).
APPROVE = "Approve"
REJECT = "Reject"
OPTIONS = (APPROVE, REJECT)
TIMED_OUT = "timed_out"
NOT_REQUIRED = "not_required"


def delete_keys(user_actions: Iterable[tuple[str, str]]) -> list[str]:
    """The request keys of a batch's (key, action) pairs that carry a delete, sorted, each once."""
    return sorted({key for key, action in user_actions if action == "delete"})


def known_delete_regulations(entries: Iterable[Mapping[str, Any]], wanted: Iterable[str] = ()) -> frozenset[str]:
    """Regulations under which a delete was submitted before, from ledger entries (their JSON).

    With `wanted`, stop reading as soon as every wanted regulation is known (callers pass a lazy reader).
    """
    wanted_set, known = set(wanted), set()
    for entry in entries:
        if entry.get("state") == "submitted" and any(a == "delete" for _k, a in entry.get("user_actions") or ()):
            known.add(str(entry["regulation"]))
            if wanted_set and wanted_set <= known:
                break
    return frozenset(known)


def gate_decision(rules: ApprovalRules, delete_batches: list[dict[str, Any]],
                  known_regulations: Iterable[str] = (), *, work_orders: int = 0) -> dict[str, Any]:
    """What the gate decides before submission (the XCom of the decide step): reasons and counts only.

    `delete_batches`: `{"batch_id", "key", "regulation", "delete_subjects"}` per batch carrying a delete
    (`key`: where the staged batch is, so a later step finds its request keys without an XCom of them).
    Resubmitted deletes are the deletes of retry batches (`<id>.r<n>`, reconcile's), wherever they are
    submitted: reconcile's own run, or a nightly run carrying one a rejection held back.
    `work_orders`: how many Data Lifecycle work orders the delete batches go out as (the hygiene DAG's
    decide step plans them); 0 where deletes are Privacy Service jobs, so the `work_orders` rule is silent.
    An empty `reasons` list means no person is asked and nothing is held back.
    """
    from privacy_pipeline.reconcile import retry_attempt

    resubmitted_deletes = sum(int(b["delete_subjects"]) for b in delete_batches if retry_attempt(b["batch_id"]) > 1)
    work = PendingWork(
        delete_regulations=frozenset(b["regulation"] for b in delete_batches),
        known_regulations=frozenset(known_regulations),
        delete_subjects=sum(int(b["delete_subjects"]) for b in delete_batches),
        resubmitted_deletes=resubmitted_deletes, work_orders=work_orders,
    )
    reasons = approval_reasons(rules, work)
    return {
        "reasons": reasons,
        "batches": [{"batch_id": b["batch_id"], "key": b.get("key"), "regulation": b["regulation"],
                     "delete_subjects": int(b["delete_subjects"])} for b in delete_batches] if reasons else [],
        "delete_subjects": work.delete_subjects,
        "regulations": sorted(work.delete_regulations),
        "new_regulations": sorted(work.delete_regulations - work.known_regulations),
    }


def question(decision: Mapping[str, Any]) -> str:
    """The body a person reads (Markdown): why, how many, under which regulations; never a value."""
    lines = ["Deletes are irreversible. This run would submit:", "",
             f"- **{decision['delete_subjects']}** delete subject(s) in **{len(decision['batches'])}** batch(es)",
             f"- regulation(s): {', '.join(decision['regulations']) or 'none'}"]
    if decision.get("new_regulations"):
        lines.append(f"- never submitted before: {', '.join(decision['new_regulations'])}")
    lines += ["", "Approval is asked because:", *(f"- {reason}" for reason in decision["reasons"]), "",
              "**Approve** submits them in this run. **Reject** (or no answer in time) postpones these batches "
              "to the next run; they are never dropped. Batches without a delete are submitted either way."]
    return "\n".join(lines)


@dataclass(frozen=True)
class GateOutcome:
    """What the submit step holds back, and what the evidence pack records."""

    decision: str  # NOT_REQUIRED, APPROVE, REJECT or TIMED_OUT
    by: str | None
    at: str | None
    held: dict[str, str]  # batch_id -> reason (what the ledger's pending marker says)
    reasons: tuple[str, ...] = ()

    def as_xcom(self) -> dict[str, Any]:
        return {"decision": self.decision, "by": self.by, "at": self.at, "held": dict(self.held),
                "reasons": list(self.reasons)}


def gate_outcome(decision: Mapping[str, Any], answer: Mapping[str, Any] | None) -> GateOutcome:
    """Combine the decision with the person's answer (the HITL task's XCom; None when nobody was asked).

    Approve: nothing held. Reject, a timeout (defaults, no responder) or an answer missing although one was
    needed: every delete batch of the decision is held, with a reason naming who and when.
    """
    reasons = tuple(decision.get("reasons") or ())
    if not reasons:
        return GateOutcome(NOT_REQUIRED, None, None, {})
    answer = answer or {}
    chosen = list(answer.get("chosen_options") or ())
    user = answer.get("responded_by_user") or {}
    by = (user.get("name") or user.get("id")) if isinstance(user, Mapping) else None
    at = answer.get("responded_at")
    at = at.isoformat() if isinstance(at, datetime) else (str(at) if at else None)
    if chosen == [APPROVE] and by:
        return GateOutcome(APPROVE, by, at, {}, reasons)
    decided = REJECT if chosen == [REJECT] and by else TIMED_OUT
    why = (f"approval rejected by {by} at {at}" if decided == REJECT
           else f"approval not given in time (asked because: {'; '.join(reasons)})")
    held = {b["batch_id"]: f"held by the approval gate: {why}; carried to the next run"
            for b in decision.get("batches") or ()}
    return GateOutcome(decided, by, at, held, reasons)
