"""Opt-out step: a run's opt-out-of-sale requests to `POST /consent`, each payload once, with evidence in S3."""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from adobe_privacy.links import RejectedRowsLink, RunFolderLink
from adobe_privacy.operators.base import ENCRYPTION_FIELDS, PrivacyBaseOperator, log_rejects, run_clock

if TYPE_CHECKING:
    from airflow.sdk import Context
    from privacy_pipeline.layout import RunLayout



class SubmitOptOutsOperator(PrivacyBaseOperator):
    """
    Send the `opt_out_of_sale` rows of a run's inputs to `POST /consent`; Adobe's 202 is the evidence.

    Access/delete rows are left to the nightly DAG (counted, not rejected). A ledger marker per payload
    hash makes a retried or re-run task skip what Adobe already accepted.

    :param input_uri: a local path or an `s3://` prefix (templated).
    :param max_values_per_request: identity values per consent payload, at most.
    :param as_of: the run's "now", ISO-8601 (templated; the DAGs pass the Variable `privacy_as_of`); empty: the wall clock.
    :param extra_regulations: regulation codes beyond Adobe's built-in ones, `{code: window_days}` or its
        JSON (templated; the DAGs pass the Variable `privacy_extra_regulations`).
    """

    template_fields: Sequence[str] = ("input_uri", "archive_uri", "as_of", "extra_regulations", *ENCRYPTION_FIELDS)
    ui_color = "#c4f2dc"
    operator_extra_links = (RunFolderLink(), RejectedRowsLink())

    def __init__(
        self,
        *,
        input_uri: str,
        max_values_per_request: int = 1000,
        as_of: str | None = None,
        extra_regulations: str | dict[str, int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.input_uri = input_uri
        self.max_values_per_request = max_values_per_request
        self.as_of = as_of
        self.extra_regulations = extra_regulations

    def execute(self, context: Context) -> dict[str, Any]:
        from privacy_pipeline import catalog
        from privacy_pipeline.intake import (
            InputSource,
            IntakeOptions,
            consent_payloads,
            read_requests,
            split_opt_outs,
        )
        from privacy_pipeline.report import write_rejects_csv

        from adobe_privacy.storage import iter_input_objects

        run = self.run_layout(context)
        self.publish_run_links(context, run, rejects=run.rejects)
        # Settings first: a malformed Variable fails at once, before anything is read or sent.
        options = IntakeOptions(default_include=("aepDataLake",),
                                allowed_actions=(*catalog.JOB_ACTIONS, catalog.OPT_OUT_OF_SALE),
                                regulations=catalog.with_extra_regulations(self.extra_regulations or None),
                                now=run_clock(self.as_of).now())
        sources = [InputSource(name=name, open=opener)
                   for name, opener in iter_input_objects(self.input_uri, aws_conn_id=self.aws_conn_id)]
        result = read_requests(sources, options)
        job_subjects, opt_outs = split_opt_outs(result.subjects)
        counts: Counter[str] = Counter()
        for payload in consent_payloads(opt_outs, self.max_values_per_request):
            counts[self._send_once(payload, run, context["run_id"])] += 1
        body = io.BytesIO()
        write_rejects_csv(result.rejects, body)
        self.store.put_bytes(run.rejects, body.getvalue(), content_type="text/csv")
        summary = {
            "rows_read": result.rows_read,
            **result.line_counts(),
            "rows_rejected": len(result.rejects),
            "opt_out_subjects": len(opt_outs),
            "job_subjects_left_to_nightly": len(job_subjects),
            "payloads_sent": counts["sent"],
            "payloads_already_accepted": counts["already_accepted"],
            "rejects_key": self.store.uri(run.rejects),
        }
        self.store.put_json(run.opt_out, summary)
        self.log.info("Opt-out of sale: %s", summary)
        log_rejects(self.log, result.rejects, self.store.uri(run.rejects))
        return summary

    def _send_once(self, payload: dict[str, Any], run: RunLayout, run_id: str) -> str:
        """Send one payload unless the ledger says Adobe accepted it; evidence first, then the marker.

        A crash between the 202 and the marker re-sends that payload once: harmless, an opt-out is a
        state, not a job.
        """
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        if self.ledger.consent(digest) is not None:
            self.log.info("Consent payload %s was accepted by an earlier run; not sending", digest[:12])
            return "already_accepted"
        self.hook.submit_consent(payload)  # returns only on Adobe's 202; anything else raises
        accepted_at = run_clock(self.as_of).now().isoformat()
        evidence_key = run.consent_evidence(digest)
        values = sum(len(entity["values"]) for entity in payload["entities"])
        self.store.put_json(evidence_key, {"sha256": digest, "status": 202, "accepted_at": accepted_at,
                                           "run_id": run_id, "values": values, "sent": payload})
        self.ledger.put_consent(digest, {"sha256": digest, "accepted_at": accepted_at, "values": values,
                                         "evidence_key": evidence_key})
        self.log.info("Consent payload %s accepted (202): %d values in %d namespaces",
                      digest[:12], values, len(payload["entities"]))
        return "sent"
