"""Operators of the privacy pipeline, one module per DAG step.

- `base`: `PrivacyBaseOperator` (connection, archive root, encryption) and the helpers steps share;
- `intake`, `submit`, `archive`, `report`: the nightly steps;
- `reconcile`, `opt_out`, `hygiene`: the companion DAGs' steps.

The exactly-once submission (`adobe_privacy.submission.BatchSubmitter`) and the archive loop
(`adobe_privacy.archiving.JobArchiver`) are classes the steps use, not base classes they inherit.
Every sensor lives in `adobe_privacy.sensors`.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> module of this package; imported on first use, so importing one step stays light.
_EXPORTS = {
    "PrivacyBaseOperator": "base",
    "PrivacyIntakeOperator": "intake",
    "SubmitPrivacyBatchesOperator": "submit",
    "ArchivePrivacyJobsOperator": "archive",
    "PrivacyRunReportOperator": "report",
    "ReconcilePrivacyJobsOperator": "reconcile",
    "SubmitOptOutsOperator": "opt_out",
    "SubmitHygieneBatchesOperator": "hygiene",
    "ArchiveHygieneJobsOperator": "hygiene",
    "SubmitHygieneDeletesOperator": "hygiene",
    "ArchiveHygieneDeletesOperator": "hygiene",
    "SubmitWorkOrdersOperator": "workorders",
    "ArchiveWorkOrdersOperator": "workorders",
    "FollowUpWorkOrdersOperator": "workorders",
    "DecideApprovalOperator": "approval",
    "AskApprovalOperator": "approval",
    "SettleApprovalOperator": "approval",
    "RecordPrivacyEventsOperator": "events",
    "RequestMetricsOperator": "metrics",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
