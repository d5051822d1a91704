"""Data Lifecycle record-delete work orders (`/data/core/hygiene/workorder`): the pure rules.

Adobe's current Data Hygiene API (GA since release 2025-06-18) deletes identities' records across
datasets through *work orders*. Facts followed (adobe-2026-update.md §5, Adobe's `workorder.md`):

- One order holds a set of identity values per namespace (`namespacesIdentities`), at most 100,000
  identities per API order; there is no per-user key and no idempotency key.
- The action is spelled `delete_identity` in the request (the newest page writes `delete-identity`;
  the examples and the OpenAPI file use the underscore) and comes back as `identity-delete`.
- Statuses: received, validated, submitted, ingested, completed, failed (examples also show
  in-progress); terminal: completed and failed.
- Quotas: ≤1,000,000 identities a day within a monthly cap, read with `GET /quota`.

Record delete is **not** for data-subject requests (Adobe: use Privacy Service for those). This DAG
is for an organisation's own record-level clean-up; the README says which DAG is for what.

Exactly once without an idempotency key: each order's `displayName` carries our batch id and the
namespace (`display_name`), so a retry first lists orders with `search=<batch id>` and adopts the one
it finds (`find_existing`) before any POST. The ledger then records the order id under the batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_IDENTITIES_PER_ORDER = 100_000
REQUEST_ACTION = "delete_identity"
RESPONSE_ACTION = "identity-delete"
FINAL_STATUSES = frozenset({"completed", "failed"})
OPEN_STATUSES = frozenset({"received", "validated", "submitted", "ingested", "in-progress"})
#: Our one job-status vocabulary (the privacy jobs' words) for a work order's status.
STATUS_WORDS = {"completed": "complete", "failed": "error"}
DISPLAY_PREFIX = "airflow-privacy"
QUOTA_TYPES = ("dailyConsumerDeleteIdentitiesQuota", "monthlyConsumerDeleteIdentitiesQuota")


@dataclass(frozen=True)
class OrderPlan:
    """One work order to send: a batch's identity values of one namespace (≤ 100,000)."""

    batch_id: str
    namespace: str
    part: int
    ids: tuple[str, ...]
    request_keys: tuple[str, ...]

    @property
    def display_name(self) -> str:
        return display_name(self.batch_id, self.namespace, self.part)

    def payload(self, dataset_id: str = "ALL") -> dict[str, Any]:
        """The POST /workorder body. Identity values are in it: never log it."""
        return {
            "displayName": self.display_name,
            "description": f"Record delete of {len(self.request_keys)} request(s) staged by Airflow",
            "action": REQUEST_ACTION,
            "datasetId": dataset_id,
            "namespacesIdentities": [{"namespace": {"code": self.namespace}, "IDs": list(self.ids)}],
        }


def display_name(batch_id: str, namespace: str, part: int = 0) -> str:
    return f"{DISPLAY_PREFIX} {batch_id} {namespace} {part}"


def plan_orders(batch_id: str, subjects: Iterable[Any], *,
                max_identities: int = MAX_IDENTITIES_PER_ORDER) -> list[OrderPlan]:
    """A staged batch's subjects -> orders, one per namespace (split past `max_identities`).

    `subjects` have `.key` and `.identities` (each with `.namespace`, `.value`). Values are deduplicated
    per namespace; the plan is deterministic (sorted), so a retry plans the very same orders.
    """
    if max_identities < 1:
        raise ValueError("max_identities must be at least 1")
    by_namespace: dict[str, dict[str, set[str]]] = {}
    for subject in subjects:
        for identity in subject.identities:
            by_namespace.setdefault(identity.namespace, {}).setdefault(identity.value, set()).add(subject.key)
    plans: list[OrderPlan] = []
    for namespace in sorted(by_namespace):
        values = sorted(by_namespace[namespace])
        for part, start in enumerate(range(0, len(values), max_identities)):
            chunk = values[start:start + max_identities]
            keys = sorted({key for value in chunk for key in by_namespace[namespace][value]})
            plans.append(OrderPlan(batch_id, namespace, part, tuple(chunk), tuple(keys)))
    return plans


def find_existing(plan: OrderPlan, listed: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The order an earlier attempt already created for `plan`, from `GET /workorder?search=<batch id>`."""
    for order in listed:
        if order.get("displayName") == plan.display_name:
            return order
    return None


def status_word(order: Mapping[str, Any]) -> str:
    """Our job-status word for a work order: complete, error, or the open status Adobe gave."""
    status = str(order.get("status") or "unknown").lower()
    return STATUS_WORDS.get(status, status)


def is_final(order: Mapping[str, Any]) -> bool:
    return str(order.get("status") or "").lower() in FINAL_STATUSES


@dataclass(frozen=True)
class QuotaVerdict:
    fits: bool
    remaining: int | None
    reason: str | None = None


def quota_verdict(quota: Mapping[str, Any], wanted: int) -> QuotaVerdict:
    """Whether `wanted` identities fit in what `GET /quota` says is left today and this month.

    Reads Adobe's `{"quotas": [{"name", "description", "consumed", "quota"}]}`; a quota that is absent
    does not limit.
    """
    remaining: list[int] = []
    for item in quota.get("quotas") or ():
        if item.get("name") in QUOTA_TYPES and item.get("quota") is not None:
            remaining.append(int(item["quota"]) - int(item.get("consumed") or 0))
    left = min(remaining) if remaining else None
    if left is not None and wanted > left:
        return QuotaVerdict(False, left, f"work-order quota: {wanted} identities wanted, {max(left, 0)} left")
    return QuotaVerdict(True, left)


def identities_in(plans: Sequence[OrderPlan]) -> int:
    """What the plans consume of the identity quotas."""
    return sum(len(plan.ids) for plan in plans)
