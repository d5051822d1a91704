"""Data Hygiene steps: the nightly submit and archive steps, pointed at the hygiene API.

Same ledger, budget, recovery and archive loop; only the job API differs. Point `archive_uri` at a root
of its own so its ledger and budget (hygiene has its own Adobe quota) stay apart from privacy jobs.
"""

from __future__ import annotations

from adobe_privacy.operators.archive import ArchivePrivacyJobsOperator
from adobe_privacy.operators.submit import SubmitPrivacyBatchesOperator


class SubmitHygieneBatchesOperator(SubmitPrivacyBatchesOperator):
    """`SubmitPrivacyBatchesOperator` to `POST /data/core/hygiene/jobs` (standard and custom namespaces)."""

    jobs_api = "hygiene"


class ArchiveHygieneJobsOperator(ArchivePrivacyJobsOperator):
    """Record each hygiene job's final state (its detail read once); deletes have no content."""

    hygiene = True
