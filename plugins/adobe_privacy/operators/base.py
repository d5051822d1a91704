"""The base of every operator here, and the few helpers every DAG step shares.

Like the Amazon provider's `AwsBaseOperator[HookT]`, the base owns the connection arguments once (the
Adobe connection, the archive root, how S3 writes are encrypted) and builds hooks lazily, never in
`__init__` (operators are constructed at every DAG parse). It also turns a configuration error raised
anywhere in a step into a non-retryable failure, once for all steps.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowFailException

from adobe_privacy.protocol import DEFAULT_CONN_ID

if TYPE_CHECKING:
    from privacy_pipeline.clock import Clock
    from privacy_pipeline.layout import ArchiveLayout, RunLayout

    from adobe_privacy.hooks import PrivacyServiceHook
    from adobe_privacy.ledger import PrivacyLedger
    from adobe_privacy.storage import PrivacyArchiveStore

#: Templated on every operator that writes to S3, so a deployment sets them once as Airflow Variables.
ENCRYPTION_FIELDS: tuple[str, ...] = ("sse", "kms_key_id")
#: Rendered at run time by the DAGs that take requests in (`catalog.with_extra_regulations` reads it).
EXTRA_REGULATIONS_TEMPLATE = "{{ var.value.get('privacy_extra_regulations', '') }}"
#: Days of past inbox partitions intake looks through for files that arrived late (`input_alerts`).
LOOKBACK_DAYS_TEMPLATE = "{{ var.value.get('privacy_input_lookback_days', '') }}"


def fails_fast_on_configuration_error(execute: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap `execute` so a `ConfigurationError` fails the task at once (no retries), with its message."""

    @functools.wraps(execute)
    def wrapper(self: Any, context: Context, *args: Any, **kwargs: Any) -> Any:
        from privacy_pipeline.errors import ConfigurationError

        try:
            return execute(self, context, *args, **kwargs)
        except ConfigurationError as err:
            raise AirflowFailException(str(err)) from err

    return wrapper


class PrivacyBaseOperator(BaseOperator):
    """
    Base of the operators of this package: the Adobe connection, the archive root and S3 encryption.

    :param archive_uri: `s3://bucket/prefix` root of the ledger and the run outputs (templated).
    :param adobe_privacy_conn_id: the `adobe_privacy_service` connection.
    :param aws_conn_id: the Amazon connection for S3.
    :param sse: server-side encryption of every write, `AES256` or `aws:kms` (templated).
    :param kms_key_id: the KMS key for `aws:kms` (templated).
    """

    template_fields: Sequence[str] = ("archive_uri", *ENCRYPTION_FIELDS)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "execute" in cls.__dict__:
            cls.execute = fails_fast_on_configuration_error(cls.__dict__["execute"])  # type: ignore[method-assign]

    def __init__(
        self,
        *,
        archive_uri: str,
        adobe_privacy_conn_id: str = DEFAULT_CONN_ID,
        aws_conn_id: str | None = "aws_default",
        sse: str = "AES256",
        kms_key_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.archive_uri = archive_uri
        self.adobe_privacy_conn_id = adobe_privacy_conn_id
        self.aws_conn_id = aws_conn_id
        self.sse = sse
        self.kms_key_id = kms_key_id

    @cached_property
    def hook(self) -> PrivacyServiceHook:
        return self.new_hook()

    def new_hook(self) -> PrivacyServiceHook:
        # The hook module imports requests and aiohttp: built at run time, never at DAG parse.
        from adobe_privacy.hooks import PrivacyServiceHook

        return PrivacyServiceHook(adobe_privacy_conn_id=self.adobe_privacy_conn_id)

    @cached_property
    def store(self) -> PrivacyArchiveStore:
        from adobe_privacy.storage import PrivacyArchiveStore

        return PrivacyArchiveStore(
            self.archive_uri, aws_conn_id=self.aws_conn_id, sse=self.sse, kms_key_id=self.kms_key_id or None
        )

    @cached_property
    def layout(self) -> ArchiveLayout:
        from privacy_pipeline.layout import ArchiveLayout

        return ArchiveLayout(self.store.prefix)

    @cached_property
    def ledger(self) -> PrivacyLedger:
        from adobe_privacy.ledger import PrivacyLedger

        return PrivacyLedger(self.store, self.layout)

    def run_layout(self, context: Context) -> RunLayout:
        """Where this run's outputs go."""
        return self.layout.run(run_partition(context), context["run_id"])

    def publish_run_links(self, context: Context, run: RunLayout, **objects: str | None) -> None:
        """Push this run's links (`adobe_privacy.links`) and log them: first thing in `execute`.

        :param objects: `report`, `rejects`, `deadlines`: keys of the run's objects this task links to;
            the run folder is always linked. Declare exactly these in `operator_extra_links`.
        """
        from adobe_privacy.links import publish_links, run_link_targets

        publish_links(context, run_link_targets(self.store, run.root, **objects), self.log)

    def update_request_index(self, context: Context, **facts: Any) -> str | None:
        """Record what this step did in the request index, after its ledger writes; never fails the task.

        The ledger and the run outputs are the truth and the index is derived from them: a failed index
        write is a WARNING, and `scripts/rebuild_index.py` rebuilds what it missed.
        """
        from adobe_privacy.index_store import run_stamp, update_index

        try:
            return update_index(self.store, **run_stamp(context), **facts)
        except Exception as err:  # noqa: BLE001 - any failure here must not undo the step's work
            # The class only: a message could quote a staged batch's content.
            self.log.warning("Request index not updated (%s); scripts/rebuild_index.py rebuilds it",
                             type(err).__name__)
            return None

    def write_evidence_packs(self, request_ids: Iterable[str], *, at: datetime) -> int:
        """An evidence pack for each of these requests that the index now says is closed; after the index
        update. A failure is a WARNING: `python -m adobe_privacy.audit packs` writes them again."""
        from adobe_privacy.audit import write_closed_packs
        from adobe_privacy.index_store import RequestIndex

        try:
            written = write_closed_packs(self.store, RequestIndex(self.store), request_ids, at=at)
        except Exception as err:  # noqa: BLE001 - evidence is derived from the index: never fail the step
            self.log.warning("Evidence packs not written (%s); `python -m adobe_privacy.audit packs` writes them",
                             type(err).__name__)
            return 0
        if written:
            self.log.info("Evidence packs written for %d closed request(s) under %s", written,
                          self.store.uri(self.store.key("evidence")))
        return written


def run_clock(as_of: Any) -> Clock:
    """The clock of a run from an `as_of` argument (empty: the wall clock)."""
    from privacy_pipeline.clock import clock_from_setting

    return clock_from_setting(as_of, setting="as_of (Variable privacy_as_of)")


def log_rejects(log: Any, rejects: Sequence[Any], rejects_uri: str) -> None:
    """Rejected rows by field and reason, with counts, at WARNING: never a value (those are in rejects.csv)."""
    from privacy_pipeline.input_alerts import rejects_by_reason

    if not rejects:
        return
    log.warning("%d row(s) rejected, written to %s; by field and reason:", len(rejects), rejects_uri)
    shown = rejects_by_reason(rejects)
    for field, reason, count in shown:
        log.warning("  %6d x %s: %s", count, field or "(row)", reason)
    others = len(rejects) - sum(count for _field, _reason, count in shown)
    if others:
        log.warning("  %6d x other reasons (see rejects.csv)", others)


def run_partition(context: Context) -> str:
    """The day a run's outputs are filed under: its logical date, or when it ran if it has none.

    A manual run triggered from the UI or the REST API with `logical_date: null` has no `ds`.
    """
    moment = context.get("logical_date") or context["dag_run"].run_after
    return moment.date().isoformat()


def materialize(values: Any) -> list[Any]:
    """A mapped task's XCom list, read by index (iterating it probes one index past the end and logs a 404)."""
    if values is None:
        return []
    if isinstance(values, dict):
        return [values]
    return [values[i] for i in range(len(values))]
