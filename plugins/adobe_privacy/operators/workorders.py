"""Data Lifecycle record-delete work orders (`/data/core/hygiene/workorder`): submit exactly once, archive.

Adobe's current Data Hygiene API (GA since 2025-06-18) deletes records through *work orders*: one order
holds a set of identity values per namespace, and Adobe takes no idempotency key. Record delete is not
for data-subject requests (those go through Privacy Service, `privacy_requests_nightly`).

Exactly once, per staged batch (`WorkOrderSubmitter`), in the same ledger document as the job APIs
(`ledger/batches/<batch id>.json`: a `LedgerEntry`, plus a `workorders` section the entry's reader
ignores):

1. a `submitted` entry: done, no call at all;
2. an `intent` entry: an earlier attempt may have posted, so the orders are listed with
   `search=<batch id>` and each planned order found by its display name is adopted before any POST;
3. otherwise `GET /quota` first (a batch over what is left today or this month is postponed, carried by
   the same pending marker as the daily budget's), then the daily budget, then per planned order: the
   intent (with this POST counted) before the POST, the order id right after it. A POST whose outcome is
   unknown is never resent blindly: the list decides, after short waits, inside the task.

The ledger records each order's id, namespace, part, identity count and the request keys it covers
(never identity values). A submitted batch gets its open marker before its pending marker goes, as for
privacy jobs; the archive step closes it once every order of the batch is final, so orders still open
at the wait's timeout stay findable for a later follow-up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from adobe_privacy.budget import DailyBudgetExhaustedError
from adobe_privacy.exceptions import PrivacyBackPressureError, PrivacyOutcomeUnknownError
from adobe_privacy.operators.base import ENCRYPTION_FIELDS, PrivacyBaseOperator, run_clock
from adobe_privacy.operators.submit import SubmitStepOperator

if TYPE_CHECKING:
    from airflow.sdk import Context
    from privacy_pipeline.batching import Batch
    from privacy_pipeline.clock import Clock
    from privacy_pipeline.ledger import LedgerEntry
    from privacy_pipeline.workorders import OrderPlan

    from adobe_privacy.budget import DailyJobBudget
    from adobe_privacy.hooks import PrivacyServiceHook
    from adobe_privacy.ledger import PrivacyLedger

log = logging.getLogger(__name__)

#: After a POST whose outcome is unknown: list re-checks (and a resend of what the list does not hold)
#: inside the task, with these waits, before the task fails and Airflow's retry recovers again.
OUTCOME_RECHECK_WAITS = (1.0, 2.0, 4.0)
#: The key of the work-order section in a batch's ledger document.
WORKORDERS_KEY = "workorders"
DELETE_ACTION = "delete"


class WorkOrderQuotaExhaustedError(PrivacyBackPressureError):
    """`GET /quota` says the batch's identities do not fit today or this month: postpone, like the budget."""

    def __init__(self, message: str, *, wanted: int, remaining: int | None) -> None:
        super().__init__(message, status=0, error_code="workorder-quota", daily_limit=True)
        self.wanted = wanted
        self.remaining = remaining


@dataclass
class WorkOrderSummary:
    """What one work-order submit task reports through XCom: ids and counts, never identities.

    The keys the report and the wait read are the job APIs' (`jobs`, `jobs_by_regulation`, ...): an
    order is this API's job. `jobs_expected` is the orders planned for the submitted batches.
    """

    chunk: int
    batch_ids: list[str] = field(default_factory=list)
    workorder_ids: list[str] = field(default_factory=list)
    regulations: dict[str, list[str]] = field(default_factory=dict)
    submitted_batches: int = 0
    submitted_subjects: int = 0
    postponed_batches: int = 0
    postponed_subjects: int = 0
    over_budget_batches: int = 0
    over_budget_subjects: int = 0
    over_quota_batches: int = 0
    over_quota_subjects: int = 0
    api_posts: int = 0
    identities: int = 0
    dry_run_subjects: int = 0
    earliest: datetime | None = None

    def add_submitted(self, entry: LedgerEntry, orders: Sequence[dict[str, Any]]) -> None:
        self.submitted_batches += 1
        self.batch_ids.append(entry.batch_id)
        ids = [order["workorder_id"] for order in orders]
        self.workorder_ids.extend(ids)
        self.regulations.setdefault(entry.regulation, []).extend(ids)
        self.submitted_subjects += len({key for key, _action in entry.user_actions})
        self.identities += sum(int(order["identities"]) for order in orders)
        if entry.intent_at is not None:
            self.earliest = entry.intent_at if self.earliest is None else min(self.earliest, entry.intent_at)

    def add_postponed(self, batch: Batch, error: PrivacyBackPressureError | None) -> None:
        self.postponed_batches += 1
        self.postponed_subjects += len(batch.subjects)
        if isinstance(error, DailyBudgetExhaustedError):
            self.over_budget_batches += 1
            self.over_budget_subjects += len(batch.subjects)
        if isinstance(error, WorkOrderQuotaExhaustedError):
            self.over_quota_batches += 1
            self.over_quota_subjects += len(batch.subjects)

    def as_xcom(self, now: datetime) -> dict[str, Any]:
        from privacy_pipeline.reconcile import recovery_window

        from_date, to_date = recovery_window(self.earliest or now)
        return {
            "api": "workorder",
            "chunk": max(self.chunk, 0),
            "jobs_by_regulation": {reg: list(ids) for reg, ids in sorted(self.regulations.items())},
            "workorder_ids": list(self.workorder_ids),
            "from_date": from_date.isoformat(),
            "to_date": to_date.isoformat(),
            "batch_ids": list(self.batch_ids),
            "submitted_batches": self.submitted_batches,
            "submitted_subjects": self.submitted_subjects,
            "postponed_batches": self.postponed_batches,
            "postponed_subjects": self.postponed_subjects,
            "over_budget_batches": self.over_budget_batches,
            "over_budget_subjects": self.over_budget_subjects,
            "over_quota_batches": self.over_quota_batches,
            "over_quota_subjects": self.over_quota_subjects,
            "api_posts": self.api_posts,
            "jobs": len(self.workorder_ids),
            "jobs_expected": len(self.workorder_ids),
            "identities": self.identities,
            "dry_run_subjects": self.dry_run_subjects,
        }


def order_record(plan: OrderPlan, order: dict[str, Any], *, adopted: bool) -> dict[str, Any]:
    """The ledger's note of one order: its id and what it covers (request keys and counts, no values)."""
    from adobe_privacy.protocol import checked_job_id

    return {
        "workorder_id": checked_job_id(order.get("workorderId")),
        "display_name": plan.display_name,
        "namespace": plan.namespace,
        "part": plan.part,
        "identities": len(plan.ids),
        "request_keys": list(plan.request_keys),
        "adopted": adopted,
    }


class WorkOrderSubmitter:
    """Submit staged batches as work orders exactly once, through the ledger, the quota and the budget.

    :param ledger: the typed ledger of the (hygiene) archive root.
    :param budget: the daily budget of that root (one reservation per order).
    :param hook: the sync hook (create_workorder, iter_workorders, get_hygiene_quota).
    :param clock: every "now" (ledger times, the budget day).
    :param dataset_id: `ALL` or one dataset's id.
    :param sleep: how waits are slept (injectable for tests).
    """

    def __init__(self, ledger: PrivacyLedger, budget: DailyJobBudget, hook: PrivacyServiceHook, *,
                 clock: Clock, dataset_id: str = "ALL", sleep: Callable[[float], None] = time.sleep) -> None:
        self.ledger = ledger
        self.budget = budget
        self.hook = hook
        self.clock = clock
        self.dataset_id = dataset_id
        self.sleep = sleep

    # -- the ledger document: a LedgerEntry plus its work orders -------------------------------------
    def read(self, batch_id: str) -> tuple[LedgerEntry | None, list[dict[str, Any]]]:
        from privacy_pipeline.ledger import LedgerEntry

        document = self.ledger.store.get_json(self.ledger.layout.ledger_batch(batch_id))
        if document is None:
            return None, []
        return LedgerEntry.from_json(document), list(document.get(WORKORDERS_KEY) or [])

    def write(self, entry: LedgerEntry, orders: Sequence[dict[str, Any]]) -> None:
        self.ledger.store.put_json(self.ledger.layout.ledger_batch(entry.batch_id),
                                   {**entry.to_json(), WORKORDERS_KEY: list(orders)})

    # -- the protocol -----------------------------------------------------------------------------------
    def submit_all(self, batches: Iterable[tuple[str, Batch]], *, run_id: str, chunk: int = 0,
                   dry_run: bool = False, held: Mapping[str, str] | None = None) -> WorkOrderSummary:
        """Submit `(staged key, batch)` pairs in order.

        A batch over Adobe's identity quota is postponed alone (a smaller one may still fit); after
        back-pressure or our daily budget, the rest of the chunk is postponed too.
        `held` (batch id -> reason): batches held back before any call to Adobe (the approval gate),
        postponed to a later run like the budget postpones them; a batch already submitted stays submitted.
        """
        summary = WorkOrderSummary(chunk=chunk)
        refused: PrivacyBackPressureError | None = None
        held = held or {}
        for batch_key, batch in batches:
            if dry_run:
                summary.dry_run_subjects += len(batch.subjects)
                continue
            if batch.batch_id in held and not self._already_submitted(batch.batch_id):
                log.info("Batch %s held back: %s", batch.batch_id, held[batch.batch_id])
                self.postpone(batch, batch_key, reason=held[batch.batch_id])
                summary.add_postponed(batch, None)
                continue
            if refused is None:
                try:
                    entry, orders = self.submit_once(batch, batch_key, run_id=run_id, summary=summary)
                except WorkOrderQuotaExhaustedError as err:
                    # Only this batch: a smaller one later in the chunk may still fit in the quota.
                    log.warning("Batch %s postponed: %s", batch.batch_id, err)
                    self.postpone(batch, batch_key, reason=str(err))
                    summary.add_postponed(batch, err)
                    continue
                except PrivacyBackPressureError as err:
                    refused = err
                    log.warning("Batch %s refused (%s); postponing the rest of this chunk", batch.batch_id, err)
                    self._release_if_unused(batch.batch_id, err)
                else:
                    summary.add_submitted(entry, orders)
                    self.ledger.mark_open(entry)  # the open marker first: a crash here leaves both
                    self.ledger.clear_pending(batch.batch_id)
                    continue
            self.postpone(batch, batch_key, reason=str(refused))
            summary.add_postponed(batch, refused)
        return summary

    def submit_once(self, batch: Batch, batch_key: str, *, run_id: str,
                    summary: WorkOrderSummary) -> tuple[LedgerEntry, list[dict[str, Any]]]:
        """The batch's submitted entry and orders, posting only orders neither the ledger nor the list has."""
        from privacy_pipeline.ledger import LedgerEntry
        from privacy_pipeline.workorders import identities_in, plan_orders

        plans = plan_orders(batch.batch_id, batch.subjects)
        entry, orders = self.read(batch.batch_id)
        if entry is not None and entry.state == "submitted":
            log.info("Batch %s already submitted (%d work orders); not posting", batch.batch_id, len(orders))
            return entry, orders
        if entry is not None and entry.state == "intent":
            orders = self.adopt(entry, plans, orders)
            if len(orders) == len(plans):
                return self._submitted(entry, orders)
        missing = self._missing(plans, orders)
        self.check_quota(batch.batch_id, identities_in(missing))
        if entry is None or entry.state == "postponed":
            entry = LedgerEntry.intent_for(batch, batch_key=batch_key, now=self.clock.now(), previous=entry)
        else:
            entry = entry.with_attempt(now=self.clock.now())
        remaining = self.budget.reserve(batch.batch_id, len(missing))
        log.info("Batch %s: %d work orders to post (%d identities); %d left in today's budget",
                 batch.batch_id, len(missing), identities_in(missing), remaining)
        for plan in missing:
            entry, orders = self._post_once(entry, orders, plan, run_id=run_id, summary=summary)
        return self._submitted(entry, orders)

    def adopt(self, entry: LedgerEntry, plans: Sequence[OrderPlan],
              orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add the orders `GET /workorder?search=<batch id>` holds for plans the ledger has no id for."""
        from privacy_pipeline.workorders import find_existing

        missing = self._missing(plans, orders)
        if not missing:
            return orders
        listed = list(self.hook.iter_workorders(search=entry.batch_id))
        found = []
        for plan in missing:
            order = find_existing(plan, listed)
            if order is not None:
                found.append(order_record(plan, dict(order), adopted=True))
        log.info("Batch %s: adopted %d existing work orders from the list, %d still missing",
                 entry.batch_id, len(found), len(missing) - len(found))
        if found:
            orders = [*orders, *found]
            self.write(entry, orders)
        return orders

    def check_quota(self, batch_id: str, wanted: int) -> None:
        """`GET /quota`: raise `WorkOrderQuotaExhaustedError` when `wanted` identities do not fit."""
        from privacy_pipeline.workorders import quota_verdict

        if wanted == 0:
            return
        verdict = quota_verdict(self.hook.get_hygiene_quota(), wanted)
        if not verdict.fits:
            raise WorkOrderQuotaExhaustedError(f"batch {batch_id}: {verdict.reason}", wanted=wanted,
                                               remaining=verdict.remaining)

    def postpone(self, batch: Batch, batch_key: str, *, reason: str) -> None:
        """List a batch for a later run (the pending marker); its entry says `postponed` unless an intent is on record."""
        from privacy_pipeline.ledger import LedgerEntry

        entry, orders = self.read(batch.batch_id)
        if entry is not None and entry.state == "submitted":
            return
        self.ledger.mark_pending(batch, key=batch_key, reason=reason)  # the carry list first, then the entry
        if entry is None or entry.state == "postponed":
            self.write(LedgerEntry.postponed_for(batch, batch_key=batch_key, now=self.clock.now(), reason=reason),
                       orders)

    # -- steps ------------------------------------------------------------------------------------------
    def _already_submitted(self, batch_id: str) -> bool:
        entry, _orders = self.read(batch_id)
        return entry is not None and entry.state == "submitted"

    def _release_if_unused(self, batch_id: str, error: PrivacyBackPressureError) -> None:
        """Adobe refused a POST: give the budget back unless an order of the batch exists already."""
        if isinstance(error, DailyBudgetExhaustedError):
            return  # nothing was reserved by this attempt
        if not self.read(batch_id)[1]:
            self.budget.release(batch_id)

    def _post_once(self, entry: LedgerEntry, orders: list[dict[str, Any]], plan: OrderPlan, *, run_id: str,
                   summary: WorkOrderSummary) -> tuple[LedgerEntry, list[dict[str, Any]]]:
        from privacy_pipeline.workorders import find_existing

        for wait in (*OUTCOME_RECHECK_WAITS, None):
            entry = entry.with_post(run_id)
            self.write(entry, orders)  # the intent (and this POST's count) before the POST goes out
            summary.api_posts += 1
            try:
                created = self.hook.create_workorder(plan.payload(self.dataset_id))
            except PrivacyOutcomeUnknownError:
                if wait is None:
                    raise  # the intent stays: the task retry lists and adopts before any POST
                log.warning("Outcome of POST /workorder for %s unknown; listing again in %.0f s",
                            plan.display_name, wait)
                self.sleep(wait)
                existing = find_existing(plan, self.hook.iter_workorders(search=entry.batch_id))
                if existing is None:
                    continue  # the list says it is not there: only this order goes out again
                created, adopted = dict(existing), True
            else:
                adopted = False
            orders = [*orders, order_record(plan, created, adopted=adopted)]
            self.write(entry, orders)
            return entry, orders
        raise AssertionError("unreachable")

    def _submitted(self, entry: LedgerEntry, orders: list[dict[str, Any]]) -> tuple[LedgerEntry, list[dict[str, Any]]]:
        """Every planned order has an id: the entry becomes `submitted` (its jobs: one covering order per key)."""
        from privacy_pipeline.ledger import JobRef

        covering: dict[str, str] = {}
        for order in orders:
            for key in order["request_keys"]:
                covering.setdefault(key, order["workorder_id"])
        jobs = [JobRef(covering[key], key, action) for key, action in entry.user_actions if key in covering]
        now = self.clock.now()
        done = replace(entry, state="submitted", jobs=jobs, submitted_at=entry.submitted_at or now, reason=None)
        self.write(done, orders)
        return done, orders

    @staticmethod
    def _missing(plans: Sequence[OrderPlan], orders: Sequence[dict[str, Any]]) -> list[OrderPlan]:
        have = {order["display_name"] for order in orders}
        return [plan for plan in plans if plan.display_name not in have]


def submitted_orders(ledger: PrivacyLedger, batch_id: str) -> tuple[LedgerEntry, list[dict[str, Any]]]:
    """A submitted batch's entry and its work orders (for the archive step)."""
    from privacy_pipeline.ledger import LedgerEntry

    document = ledger.store.get_json(ledger.layout.ledger_batch(batch_id))
    if document is None:
        raise RuntimeError(f"ledger entry for batch {batch_id} is missing")
    return LedgerEntry.from_json(document), list(document.get(WORKORDERS_KEY) or [])


def workorder_record(entry: LedgerEntry, order: dict[str, Any], detail: dict[str, Any]) -> dict[str, Any]:
    """One `jobs.jsonl` line for an order: its final GET (status, productStatusDetails), no identity values."""
    from privacy_pipeline.workorders import status_word

    details = [
        {"productName": p.get("productName"), "productStatus": p.get("productStatus"), "createdAt": p.get("createdAt")}
        for p in detail.get("productStatusDetails") or []
    ]
    return {
        "jobId": order["workorder_id"],
        "userKey": None,  # an order covers many request keys: `requestKeys`
        "requestKeys": list(order["request_keys"]),
        "action": DELETE_ACTION,
        "regulation": entry.regulation,
        "batchId": entry.batch_id,
        "api": "workorder",
        "namespace": order["namespace"],
        "identities": order["identities"],
        "status": status_word(detail),
        "workorderStatus": detail.get("status"),
        "bundleId": detail.get("bundleId"),
        "createdAt": detail.get("createdAt"),
        "updatedAt": detail.get("updatedAt"),
        "productStatusDetails": details,
        "productResponses": [{"product": p["productName"], "status": p["productStatus"],
                              "responseMsgCode": None, "message": None, "results": {}} for p in details],
    }


class SubmitWorkOrdersOperator(SubmitStepOperator):
    """
    Submit each staged batch of a chunk as record-delete work orders (one per namespace), exactly once.

    Returns a small summary (XCom) shaped like the job submit's: the order ids (for the wait), counts
    (postponed over the budget or over Adobe's quota), and the list window.

    The chunk's arguments (`batch_keys`, `dry_run`, `daily_job_budget` — orders per UTC day under this
    archive root —, `as_of`, `held`) are :class:`~adobe_privacy.operators.submit.SubmitStepOperator`'s.

    :param dataset_id: `ALL` (every dataset) or one dataset's id (templated).
    """

    template_fields: Sequence[str] = ("batch_keys", "archive_uri", "dataset_id", "dry_run", "daily_job_budget",
                                      "as_of", "held", *ENCRYPTION_FIELDS)
    ui_color = "#f2d0c4"

    def __init__(self, *, dataset_id: str = "ALL", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dataset_id = dataset_id

    def execute(self, context: Context) -> dict[str, Any]:
        submitter = self.submitter()
        summary = self.submit_chunk(submitter, context, self.staged_batches())
        self.log.info("Chunk done: %d batches as %d work orders (%d POSTs), %d postponed (%d over quota)",
                      summary.submitted_batches, len(summary.workorder_ids), summary.api_posts,
                      summary.postponed_batches, summary.over_quota_batches)
        return summary.as_xcom(submitter.clock.now())

    def submitter(self) -> WorkOrderSubmitter:
        clock = run_clock(self.as_of)
        return WorkOrderSubmitter(self.ledger, self.daily_budget(clock), self.hook, clock=clock,
                                  dataset_id=str(self.dataset_id or "ALL"))


class ArchiveWorkOrdersOperator(PrivacyBaseOperator):
    """
    Record each work order's state (its final `GET /workorder/{id}`, with productStatusDetails).

    Writes `jobs/part-<chunk>.jsonl` like the job archive; a batch whose orders are all final leaves the
    open index, one with orders still open stays in it (a later follow-up finds them there).

    :param batch_ids: the chunk's submitted batches (templated; from the submit task's summary).
    :param chunk_index: the part file's number.
    """

    template_fields: Sequence[str] = ("batch_ids", "archive_uri", *ENCRYPTION_FIELDS)
    ui_color = "#c4e1f2"

    def __init__(self, *, batch_ids: list[str], chunk_index: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batch_ids = batch_ids
        self.chunk_index = chunk_index

    def execute(self, context: Context) -> dict[str, Any]:
        from collections import Counter

        from privacy_pipeline.report import jobs_jsonl
        from privacy_pipeline.workorders import is_final

        run = self.run_layout(context)
        records: list[dict[str, Any]] = []
        for batch_id in self.batch_ids:
            entry, orders = submitted_orders(self.ledger, batch_id)
            details = [self.hook.get_workorder(order["workorder_id"]) for order in orders]
            records.extend(workorder_record(entry, order, detail) for order, detail in zip(orders, details, strict=True))
            if all(is_final(detail) for detail in details):
                self.ledger.close(batch_id, final={o["workorder_id"]: d.get("status", "unknown")
                                                   for o, d in zip(orders, details, strict=True)})
            else:
                self.ledger.mark_open(entry, final={o["workorder_id"]: d.get("status", "unknown")
                                                    for o, d in zip(orders, details, strict=True) if is_final(d)})
        self.store.put_bytes(run.jobs_part(int(self.chunk_index)), b"".join(jobs_jsonl(records)),
                             content_type="application/x-ndjson")
        counts = Counter(f"status:{record['status']}" for record in records)
        self.log.info("Recorded chunk %s: %d work orders, %s", self.chunk_index, len(records), dict(counts))
        return {"jobs": len(records), **counts}


def followup_key(run_root: str) -> str:
    """Where a run's follow-up of earlier runs' orders is recorded (beside its jobs parts)."""
    return f"{run_root}/followup/workorders.jsonl"


class FollowUpWorkOrdersOperator(PrivacyBaseOperator):
    """
    Follow up work orders of earlier runs still open (`ledger/open/` under the hygiene root).

    Work orders take up to 30 days, longer than a run waits. Each run, after its own archive step, reads
    every open batch not submitted by this run; a batch whose orders are all final gets their final GETs
    recorded in `runs/<ds>/<run>/followup/workorders.jsonl` and leaves the open index; a batch with orders
    still open stays (its marker notes the orders already final). Returns counts (XCom).

    :param exclude_submissions: this run's submit summaries (templated): their batches are this run's.
    """

    template_fields: Sequence[str] = ("archive_uri", "exclude_submissions", *ENCRYPTION_FIELDS)
    ui_color = "#c4e1f2"

    def __init__(self, *, exclude_submissions: list[dict[str, Any]] | Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.exclude_submissions = exclude_submissions

    def execute(self, context: Context) -> dict[str, Any]:
        from collections import Counter

        from privacy_pipeline.report import jobs_jsonl
        from privacy_pipeline.workorders import is_final

        from adobe_privacy.operators.base import materialize

        own = {batch_id for s in materialize(self.exclude_submissions) if s for batch_id in s.get("batch_ids") or []}
        records: list[dict[str, Any]] = []
        counts: Counter[str] = Counter()
        for batch_id, marker in sorted(self.ledger.open_markers().items()):
            if batch_id in own:
                continue
            entry, orders = submitted_orders(self.ledger, batch_id)
            if not orders:
                continue  # not a work-order batch
            counts["batches_checked"] += 1
            details = [self.hook.get_workorder(order["workorder_id"]) for order in orders]
            if all(is_final(detail) for detail in details):
                records.extend(workorder_record(entry, o, d) for o, d in zip(orders, details, strict=True))
                counts["batches_closed"] += 1
            else:
                self.ledger.update_open(marker, {o["workorder_id"]: d.get("status", "unknown")
                                                 for o, d in zip(orders, details, strict=True) if is_final(d)})
                counts["orders_open"] += sum(1 for d in details if not is_final(d))
        run = self.run_layout(context)
        if records:
            self.store.put_bytes(followup_key(run.root), b"".join(jobs_jsonl(records)),
                                 content_type="application/x-ndjson")
            for batch_id in sorted({record["batchId"] for record in records}):
                final = {str(r["jobId"]): str(r["status"]) for r in records if r["batchId"] == batch_id}
                self.ledger.close(batch_id, final=final)  # only once its records are stored
        counts.update(f"status:{record['status']}" for record in records)
        self.log.info("Followed up open work orders of earlier runs: %s", dict(counts))
        return {"orders_recorded": len(records), **counts}
