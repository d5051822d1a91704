"""The optional approval gate before delete submissions: decide, ask a person, settle what is held back.

Three small steps between intake and submit (the rules and the decision are `privacy_pipeline.approval`):

- `DecideApprovalOperator` reads the Variable `privacy_approval_rules`; with no rules it returns at once
  (no S3 read). Otherwise it finds the run's delete batches (staged and carried) and, for
  `first_run_of_regulation`, the regulations the ledger has submitted deletes under before.
- `AskApprovalOperator`, Airflow's human-in-the-loop operator: skipped when no rule holds (nobody waits
  on a normal night); else it asks Approve / Reject with the reasons and counts (never a value) and waits
  in Airflow 3.3's `awaiting_input` state (no worker, triggerer or pool slot) until an answer or its
  response timeout, which answers Reject.
- `SettleApprovalOperator` turns the answer into what the submit step holds back (batch id -> reason;
  the ledger's pending markers carry those batches to the next run) and records who answered, and
  when, in the request index (the evidence pack's approvals).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import Param
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from adobe_privacy.operators.base import (
    ENCRYPTION_FIELDS,
    PrivacyBaseOperator,
    fails_fast_on_configuration_error,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

#: The rules, rendered at run time from the Variable (never read at parse time).
APPROVAL_RULES = "{{ var.value.get('privacy_approval_rules', '') }}"
DEFAULT_APPROVAL_TIMEOUT = 24 * 3600
SUBJECT = "Approve the delete submissions of {{ dag.dag_id }} ({{ run_id }})?"


def approval_timeout_param(default: int = DEFAULT_APPROVAL_TIMEOUT) -> Param:
    """The Trigger form's field for how long the gate waits for a person (seconds)."""
    return Param(
        default, type="integer", minimum=60, maximum=7 * 24 * 3600, title="Approval timeout (seconds)",
        description=(f"How long the approval gate (Variable privacy_approval_rules) waits for an answer "
                     f"(default {default // 3600} h). No answer in time counts as Reject: the delete batches "
                     "are carried to the next run, the other batches are submitted."),
    )


def _flat(chunks: Any) -> list[str]:
    """Intake's XCom (chunks of staged keys) as one list of keys."""
    if not chunks:
        return []
    if isinstance(chunks, str):
        return [chunks]
    return [key for chunk in chunks for key in ([chunk] if isinstance(chunk, str) else chunk)]


def _true(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("true", "1", "yes")


class DecideApprovalOperator(PrivacyBaseOperator):
    """
    Decide whether this run's delete batches need a person's approval (XCom: reasons, counts, batch ids).

    :param batch_keys: the staged batch keys of the run (intake's chunks; templated).
    :param rules: the rules (JSON text or a dict; templated, default the Variable `privacy_approval_rules`).
    :param dry_run: a rehearsal posts nothing, so nobody is asked (templated).
    :param work_orders: the delete batches go out as Data Lifecycle work orders (the hygiene DAG): the
        rule `work_orders` holds for any, and counts the orders planned for them (one per namespace).
    """

    template_fields: Sequence[str] = ("batch_keys", "rules", "dry_run", "archive_uri", *ENCRYPTION_FIELDS)
    ui_color = "#f5e6b8"

    def __init__(self, *, batch_keys: Any, rules: Any = APPROVAL_RULES, dry_run: bool = False,
                 work_orders: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.work_orders = work_orders
        self.batch_keys = batch_keys
        self.rules = rules
        self.dry_run = dry_run  # type: ignore[method-assign,assignment]  # shadows BaseOperator.dry_run()

    def execute(self, context: Context) -> dict[str, Any]:
        from privacy_pipeline.approval import (
            delete_keys,
            gate_decision,
            known_delete_regulations,
            parse_rules,
        )
        from privacy_pipeline.batching import load_batch
        from privacy_pipeline.workorders import plan_orders

        rules = parse_rules(self.rules)  # a malformed Variable fails the run at once, dry or not
        if not rules.enabled or _true(self.dry_run):
            self.log.info("No approval rules (Variable privacy_approval_rules) or a dry run: nothing to ask")
            return gate_decision(parse_rules(None), [])
        delete_batches: list[dict[str, Any]] = []
        work_orders = 0
        for key in _flat(self.batch_keys):
            body = self.store.get_bytes(key)
            if body is None:
                raise RuntimeError(f"staged batch {key} is missing")
            batch = load_batch(body)
            deletes = len(delete_keys(batch.user_actions))
            if deletes:
                delete_batches.append({"batch_id": batch.batch_id, "key": key, "regulation": batch.shape.regulation,
                                       "delete_subjects": deletes})
                if self.work_orders:
                    work_orders += len(plan_orders(batch.batch_id, batch.subjects))
        known: frozenset[str] = frozenset()
        if rules.first_run_of_regulation and delete_batches:
            known = known_delete_regulations(self._ledger_entries(), wanted={b["regulation"] for b in delete_batches})
        decision = gate_decision(rules, delete_batches, known, work_orders=work_orders)
        if decision["reasons"]:
            self.log.info("Approval needed for %d delete batches (%d subjects): %s", len(decision["batches"]),
                          decision["delete_subjects"], "; ".join(decision["reasons"]))
        else:
            self.log.info("No approval rule holds for %d delete batches (%d subjects)", len(delete_batches),
                          decision["delete_subjects"])
        return decision

    def _ledger_entries(self) -> Iterator[dict[str, Any]]:
        """Every ledger entry, read lazily (the caller stops once it knows enough)."""
        for key in self.store.list_keys(self.layout.ledger_batches_prefix) or []:
            entry = self.store.get_json(key)
            if entry:
                yield entry


class AskApprovalOperator(HITLOperator):
    """
    Ask a person to approve the run's delete submissions; skipped when the decision holds no reason.

    Options Approve / Reject; no answer within `response_timeout` answers Reject (`defaults`).

    :param decision: the decide step's XCom (templated).
    :param response_timeout: seconds (or a timedelta) to wait for an answer (templated).
    """

    template_fields: Sequence[str] = (*HITLOperator.template_fields, "decision", "response_timeout")
    ui_color = "#f5c6b8"

    def __init__(self, *, decision: Any, response_timeout: int | str | timedelta = DEFAULT_APPROVAL_TIMEOUT,
                 subject: str = SUBJECT, **kwargs: Any) -> None:
        from privacy_pipeline.approval import OPTIONS, REJECT

        super().__init__(subject=subject, options=list(OPTIONS), defaults=[REJECT], multiple=False, **kwargs)
        self.decision = decision
        self.response_timeout = response_timeout  # type: ignore[assignment]  # rendered, then a timedelta

    @fails_fast_on_configuration_error
    def execute(self, context: Context) -> Any:
        from privacy_pipeline.approval import question
        from privacy_pipeline.errors import ConfigurationError

        if not (self.decision or {}).get("reasons"):
            raise AirflowSkipException("No approval rule holds: nobody is asked")
        timeout: Any = self.response_timeout
        if not isinstance(timeout, timedelta):
            try:
                timeout = timedelta(seconds=int(timeout))
            except (TypeError, ValueError):
                raise ConfigurationError("approval_timeout", timeout, hint="whole seconds") from None
        self.response_timeout = timeout
        self.body = question(self.decision)
        return super().execute(context)


class SettleApprovalOperator(PrivacyBaseOperator):
    """
    What the submit step holds back after the gate (XCom: batch id -> reason), and the answer in the index.

    Runs whatever the ask step's state (skipped, answered, failed): without an answer where one was
    needed, the delete batches are held (postponed, never dropped).

    :param decision: the decide step's XCom (templated).
    :param ask_task_id: the ask step, whose answer this reads.
    """

    template_fields: Sequence[str] = ("decision", "archive_uri", *ENCRYPTION_FIELDS)
    ui_color = "#f5e6b8"

    def __init__(self, *, decision: Any, ask_task_id: str, **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        self.decision = decision
        self.ask_task_id = ask_task_id

    def execute(self, context: Context) -> dict[str, str]:
        from privacy_pipeline.approval import NOT_REQUIRED, gate_outcome

        if not isinstance(self.decision, dict):  # the decide step failed: a retry here cannot help
            raise AirflowFailException("the approval decision is missing (see decide_approval's log)")
        answer = context["ti"].xcom_pull(task_ids=self.ask_task_id) if self.decision.get("reasons") else None
        outcome = gate_outcome(self.decision, answer)
        if outcome.decision == NOT_REQUIRED:
            return {}
        self.log.info("Approval gate: %s by %s at %s; %d delete batches held back", outcome.decision,
                      outcome.by or "nobody (timeout)", outcome.at, len(outcome.held))
        self._record(context, outcome)
        return outcome.held

    def _record(self, context: Context, outcome: Any) -> None:
        """The answer per delete batch, on every request of it, in the request index (keys only).

        Like every index write, a failure here is a warning: the ledger's pending markers name the
        answer too, and the index is rebuilt from the archive."""
        from datetime import UTC, datetime

        from privacy_pipeline.approval import delete_keys
        from privacy_pipeline.batching import load_batch

        approvals = []
        for item in self.decision["batches"]:
            body = self.store.get_bytes(item["key"])
            if body is None:
                raise RuntimeError(f"staged batch {item['key']} is missing")
            approvals.append((delete_keys(load_batch(body).user_actions), {
                "batch_id": item["batch_id"], "decision": outcome.decision, "by": outcome.by,
                "at": outcome.at or datetime.now(UTC), "reasons": list(outcome.reasons)}))
        self.update_request_index(context, approvals=approvals)


def approval_gate(batch_keys: Any, *, doc_md: str, dry_run: Any = False, work_orders: bool = False,
                  **storage: Any) -> Any:
    """The gate's three steps, wired the one way every DAG has them: decide >> ask >> settle.

    Call it inside a DAG between intake and submit; `storage` (`archive_uri` and the encryption fields)
    goes to the two steps that read the ledger. Returns what the submit step holds back (the settle
    step's XCom), for its `held`."""
    decision = DecideApprovalOperator(
        task_id="decide_approval", batch_keys=batch_keys, dry_run=dry_run, work_orders=work_orders, doc_md=doc_md,
        **storage,
    )
    asked = AskApprovalOperator(
        task_id="ask_approval", decision=decision.output, response_timeout="{{ params.approval_timeout }}",
        doc_md=doc_md,
    )
    held = SettleApprovalOperator(
        task_id="settle_approval", decision=decision.output, ask_task_id=asked.task_id, doc_md=doc_md, **storage,
    )
    decision >> asked >> held
    return held.output
