"""Batching: subjects -> deterministic batches of one job shape, and their POST /jobs bodies.

A batch is what one `POST /jobs` sends: at most 1000 subjects (Adobe's limit per request), all with
the same regulation, include products, priority, expandIds and mergePolicyId (those are request-level
fields). Batches and their ids depend only on the subjects, never on file order or the clock, so a
rerun over the same input plans the same batches and the ledger recognises them.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from privacy_pipeline import catalog
from privacy_pipeline.models import Identity, Subject

MAX_SUBJECTS_PER_REQUEST = 1000
MAX_IDENTITIES_PER_SUBJECT = 9
BATCH_FORMAT_VERSION = 1

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class JobShape:
    """The request-level fields of POST /jobs: subjects of one shape can share a request."""

    regulation: str
    include: tuple[str, ...]
    priority: str = "normal"
    expand_ids: bool = False
    merge_policy_id: str | None = None

    @classmethod
    def of(cls, subject: Subject) -> JobShape:
        return cls(subject.regulation, subject.include, subject.priority, subject.expand_ids, subject.merge_policy_id)

    def sort_key(self) -> tuple:
        return (self.regulation, self.include, self.priority, self.expand_ids, self.merge_policy_id or "")


@dataclass(frozen=True, slots=True)
class Batch:
    batch_id: str
    shape: JobShape
    subjects: tuple[Subject, ...]

    @property
    def jobs_expected(self) -> int:
        """Adobe creates one job per (subject, action)."""
        return sum(len(subject.actions) for subject in self.subjects)

    @property
    def user_actions(self) -> list[tuple[str, str]]:
        return [(subject.key, action) for subject in self.subjects for action in subject.actions]


def batch_id_for(shape: JobShape, subjects: Sequence[Subject]) -> str:
    """`b-` + 20 hex digits of sha256 over the shape and the subjects' keys and actions."""
    members = "".join(f"\x00{subject.key}\x01{'|'.join(subject.actions)}" for subject in subjects)
    digest = hashlib.sha256(json.dumps(_shape_to_json(shape), sort_keys=True).encode())
    digest.update(members.encode("utf-8", "surrogatepass"))
    return "b-" + digest.hexdigest()[:20]


def plan_batches(subjects: Iterable[Subject], max_subjects: int = MAX_SUBJECTS_PER_REQUEST) -> list[Batch]:
    """Group subjects by job shape and cut each group into batches of at most `max_subjects`.

    Shapes are ordered by their fields and subjects by key, so the plan does not depend on input order.

    :raises ValueError: `max_subjects` outside 1..1000, a subject Adobe would refuse (no action, an
        opt-out-of-sale action, no identity or more than 9), or a key used twice.
    """
    if not 1 <= max_subjects <= MAX_SUBJECTS_PER_REQUEST:
        raise ValueError(f"max_subjects must be between 1 and {MAX_SUBJECTS_PER_REQUEST}")
    by_shape: dict[tuple, list[Subject]] = defaultdict(list)
    keys: set[str] = set()
    count = 0
    for subject in subjects:
        _check_submittable(subject)
        # A plain tuple as the group key: one JobShape per group, not one per subject.
        by_shape[(subject.regulation, subject.include, subject.priority, subject.expand_ids,
                  subject.merge_policy_id)].append(subject)
        keys.add(subject.key)
        count += 1
    if len(keys) != count:
        raise ValueError("a subject key appears twice; keys must be unique within a run")
    batches: list[Batch] = []
    for shape in sorted((JobShape(*fields) for fields in by_shape), key=JobShape.sort_key):
        members = sorted(by_shape[(shape.regulation, shape.include, shape.priority, shape.expand_ids,
                                   shape.merge_policy_id)], key=_by_key)
        for start in range(0, len(members), max_subjects):
            chunk = tuple(members[start : start + max_subjects])
            batches.append(Batch(batch_id_for(shape, chunk), shape, chunk))
    return batches


def _by_key(subject: Subject) -> str:
    return subject.key


_JOB_ACTION_SETS = frozenset({("access",), ("delete",), ("access", "delete"), ("delete", "access")})


def _check_submittable(subject: Subject) -> None:
    if subject.actions not in _JOB_ACTION_SETS:
        raise ValueError(f"subject actions {subject.actions} are not job actions ({', '.join(catalog.JOB_ACTIONS)})")
    if not 1 <= len(subject.identities) <= MAX_IDENTITIES_PER_SUBJECT:
        raise ValueError(f"a subject needs 1 to {MAX_IDENTITIES_PER_SUBJECT} identities, not {len(subject.identities)}")
    if not subject.include:
        raise ValueError("a subject needs at least one include product")


def batch_payload(batch: Batch, org_id: str) -> dict[str, Any]:
    """The Adobe POST /jobs body for `batch` (reference section 2.1)."""
    shape = batch.shape
    payload: dict[str, Any] = {
        "companyContexts": [{"namespace": "imsOrgID", "value": org_id}],
        "users": [subject.as_user() for subject in batch.subjects],
        "include": list(shape.include),
        "expandIds": shape.expand_ids,
        "priority": shape.priority,
        "regulation": shape.regulation,
    }
    if shape.merge_policy_id is not None:
        # Adobe's examples send an integer; keep anything else as the string we were given.
        merge = shape.merge_policy_id
        payload["mergePolicyId"] = int(merge) if merge.isascii() and merge.isdigit() else merge
    return payload


def chunk_evenly(items: Sequence[T], max_chunks: int) -> list[list[T]]:
    """Split `items` in order into at most `max_chunks` contiguous chunks whose sizes differ by <= 1.

    Keeps the number of mapped Airflow tasks under `max_map_length` (1024) whatever the input size.
    """
    if max_chunks < 1:
        raise ValueError("max_chunks must be at least 1")
    items = list(items)
    count = min(len(items), max_chunks)
    if count == 0:
        return []
    size, extra = divmod(len(items), count)
    chunks: list[list[T]] = []
    start = 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        chunks.append(items[start:end])
        start = end
    return chunks


# ---------------------------------------------------------------------------------- serialisation


def dump_batch(batch: Batch) -> bytes:
    """The staged batch as compact JSON bytes (holds identity values: store it encrypted, never log it).

    Subject fields the shape already fixes are not repeated; each subject is an array
    `[key, actions, [[namespace, value, type], ...], received_at, source index, rows]`.
    """
    sources: dict[str, int] = {}
    subjects = []
    for subject in batch.subjects:
        subjects.append([
            subject.key,
            subject.actions,
            [(i.namespace, i.value, i.type) for i in subject.identities],
            subject.received_at.isoformat() if subject.received_at else None,
            sources.setdefault(subject.source, len(sources)),
            subject.rows,
        ])
    document = {
        "version": BATCH_FORMAT_VERSION,
        "batch_id": batch.batch_id,
        "shape": _shape_to_json(batch.shape),
        "sources": list(sources),
        "subjects": subjects,
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def load_batch(data: bytes | str) -> Batch:
    """Inverse of `dump_batch`; `ValueError` when the document is not a batch or its id does not match."""
    document = json.loads(data)
    if not isinstance(document, dict) or document.get("version") != BATCH_FORMAT_VERSION:
        raise ValueError("not a staged batch document (or an unknown version)")
    shape = _shape_from_json(document["shape"])
    sources = document["sources"]
    subjects = tuple(
        Subject(
            key=key,
            actions=tuple(actions),
            regulation=shape.regulation,
            include=shape.include,
            identities=tuple(Identity(*identity) for identity in identities),
            received_at=datetime.fromisoformat(received) if received else None,
            priority=shape.priority,
            expand_ids=shape.expand_ids,
            merge_policy_id=shape.merge_policy_id,
            source=sources[source],
            rows=tuple(rows),
        )
        for key, actions, identities, received, source, rows in document["subjects"]
    )
    batch = Batch(document["batch_id"], shape, subjects)
    if batch_id_for(shape, subjects) != batch.batch_id:
        raise ValueError(f"batch {batch.batch_id} does not match its content")
    return batch


def _shape_to_json(shape: JobShape) -> dict[str, Any]:
    return {
        "regulation": shape.regulation,
        "include": list(shape.include),
        "priority": shape.priority,
        "expand_ids": shape.expand_ids,
        "merge_policy_id": shape.merge_policy_id,
    }


def _shape_from_json(item: dict[str, Any]) -> JobShape:
    return JobShape(
        item["regulation"], tuple(item["include"]), item["priority"], item["expand_ids"], item["merge_policy_id"]
    )
