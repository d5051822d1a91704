"""Adobe I/O Events journal: the async reader, the recorded journal in S3, and the recorder between them.

One recorder reads the journal of our event registration and records every page into the ledger as
an append-only series of small objects (``ledger/events/<registration>/records/<seq>.json``), then
moves the recorded position (``position.json``) with a conditional put. Waits and reconciliation read
the records, never the journal, so they cannot take events from each other and a restart resumes
from the recorded position. See :mod:`privacy_pipeline.events` for the rules (parsing, dedupe, gaps).

Connection: the ``journal_url`` extra of the ``adobe_privacy_service`` connection (the registration's
journal URL from Adobe Developer Console); the journal is read with that connection's credential.
When the event registration belongs to another credential, give the reader a second connection of
the same type holding that credential and the ``journal_url``. Each GET goes through
:meth:`PrivacyServiceAsyncHook.journal_get`, which keeps the token on the journal's origin.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import aiohttp
import tenacity
from privacy_pipeline.events import DEFAULT_REGISTRATION_ID

from adobe_privacy.exceptions import PrivacyServiceError
from adobe_privacy.protocol import DEFAULT_CONN_ID, ReadRetryPolicy, classify_error, parse_retry_after

if TYPE_CHECKING:
    from adobe_privacy.hooks.asynchronous import JournalResponse

log = logging.getLogger(__name__)

DEFAULT_RETRY_AFTER_SECONDS = 10.0
DEFAULT_PAGE_LIMIT = 1000
JOURNAL_RETENTION_SECONDS = 7 * 86400.0
#: On a 410 we seek back this far (the retention less a margin): everything the journal still has.
SEEK_ON_GONE_SECONDS = JOURNAL_RETENTION_SECONDS - 3600.0
DEDUPE_WINDOW = 2000
OPERATION = "GET journal"


class JournalPositionGone(PrivacyServiceError):
    """410: the journal no longer has our position (older than its retention)."""

    def __init__(self, position: str | None) -> None:
        super().__init__("journal position expired (410 Gone)")
        self.position = position


class JournalPage(NamedTuple):
    """One journal response: ``status`` 200 (entries) or 204 (at the end)."""

    status: int
    entries: list[dict[str, Any]]
    last: str | None
    next_url: str | None
    retry_after: float | None


def since_of(url: str | None) -> str | None:
    """The ``since`` position carried by a ``next`` link."""
    if not url:
        return None
    values = parse_qs(urlsplit(url).query).get("since")
    return values[0] if values else None


class PrivacyJournalReader:
    """
    Async reader of one event registration's journal, on :meth:`PrivacyServiceAsyncHook.journal_get`.

    :param adobe_privacy_conn_id: the ``adobe_privacy_service`` connection with ``extra.journal_url``.
    :param page_limit: ``limit`` sent with every read (kept by Adobe in the ``next`` links).
    :param retry_policy: how transient failures (5xx, 429 with its ``Retry-After``, timeouts) are retried.
    :param sleep: async sleep (injectable for tests).
    """

    def __init__(
        self,
        adobe_privacy_conn_id: str = DEFAULT_CONN_ID,
        *,
        page_limit: int = DEFAULT_PAGE_LIMIT,
        retry_policy: ReadRetryPolicy | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        from adobe_privacy.hooks import PrivacyServiceAsyncHook

        self.adobe_privacy_conn_id = adobe_privacy_conn_id
        self.page_limit = page_limit
        self.retry_policy = retry_policy or ReadRetryPolicy()
        self._sleep = sleep
        self.hook = PrivacyServiceAsyncHook(adobe_privacy_conn_id, retry_policy=self.retry_policy, sleep=sleep)
        self.journal_url: str | None = None

    async def connection(self) -> str:
        """The configured journal URL (a ConfigurationError when the connection has none)."""
        if self.journal_url is None:
            from privacy_pipeline.errors import ConfigurationError

            settings = await self.hook.get_settings()
            if not settings.journal_url:
                raise ConfigurationError(
                    f"connection {self.adobe_privacy_conn_id} extra.journal_url", None,
                    hint="copy the journal URL of the event registration from Adobe Developer Console",
                )
            self.journal_url = settings.journal_url
        return self.journal_url

    def _retrying(self) -> tenacity.AsyncRetrying:
        return tenacity.AsyncRetrying(**self.retry_policy.tenacity_kwargs(self._sleep, log))

    def first_url(self, position: str | None, *, seek: str | None = None, latest: bool = False) -> str:
        """The journal URL for a read: ``since`` a position, a ``seek`` back, ``latest``, or the oldest."""
        assert self.journal_url is not None, "await connection() first"
        params: dict[str, Any] = {"limit": self.page_limit}
        if position is not None:
            params["since"] = position
        elif seek is not None:
            params["seek"] = seek
        elif latest:
            params["latest"] = "true"
        separator = "&" if urlsplit(self.journal_url).query else "?"
        return f"{self.journal_url}{separator}{urlencode(params, safe=':')}"

    async def fetch(self, http: aiohttp.ClientSession, url: str) -> JournalPage:
        """One journal read (transient failures retried, honouring ``Retry-After``).

        :raises JournalPositionGone: 410, the position expired.
        """
        from privacy_pipeline.events import parse_link_header

        journal_url = await self.connection()

        async def attempt():
            response = await self.hook.journal_get(url, session=http)
            if response.status in (200, 204):
                return response
            if response.status == 410:
                raise JournalPositionGone(since_of(url))
            raise classify_error(response.status, response.body, response.headers, operation=OPERATION)

        response: JournalResponse = await self._retrying()(attempt)
        links = parse_link_header(response.headers.getall("Link", []))
        next_url = urljoin(journal_url, links["next"]) if "next" in links else None
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        if response.status == 204:
            return JournalPage(204, [], since_of(next_url) or since_of(url), next_url,
                               DEFAULT_RETRY_AFTER_SECONDS if retry_after is None else retry_after)
        document = json.loads(response.body)
        entries = document.get("events") or []
        last = (document.get("_page") or {}).get("last") or (entries[-1].get("position") if entries else None)
        return JournalPage(200, entries, last, next_url, retry_after)

    def session(self) -> aiohttp.ClientSession:
        """One HTTP session for a series of reads (TLS verified, no environment credentials)."""
        settings = self.hook._settings
        return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=settings.timeout if settings else 60.0))


class S3JournalStore:
    """The recorded journal in S3: immutable records (``If-None-Match: *``) and a CAS position."""

    def __init__(self, archive, keys) -> None:
        self.archive = archive  # a PrivacyArchiveStore (bucket, client, encryption)
        self.keys = keys  # a privacy_pipeline.events.EventKeys

    def _get(self, key: str) -> tuple[dict | None, str | None]:
        client = self.archive.client
        try:
            response = client.get_object(Bucket=self.archive.bucket, Key=key)
        except client.exceptions.NoSuchKey:
            return None, None
        return json.loads(response["Body"].read()), response["ETag"]

    def _put(self, key: str, document: dict, condition: dict[str, str]) -> bool:
        from botocore.exceptions import ClientError

        body = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
        try:
            self.archive.client.put_object(
                Bucket=self.archive.bucket, Key=key, Body=body, ContentType="application/json",
                **self.archive.encryption_args, **condition,
            )
        except ClientError as err:
            if err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") in (409, 412):
                return False  # another recorder wrote first
            raise
        return True

    def read_position(self):
        from privacy_pipeline.events import JournalPosition

        document, etag = self._get(self.keys.position)
        return JournalPosition.from_json(document), etag

    def write_position(self, position, etag: str | None) -> bool:
        return self._put(self.keys.position, position.to_json(), {"IfMatch": etag} if etag else {"IfNoneMatch": "*"})

    def get_record(self, seq: int):
        from privacy_pipeline.events import JournalRecord

        document, _ = self._get(self.keys.record(seq))
        return JournalRecord.from_json(document) if document else None

    def put_record(self, record) -> bool:
        return self._put(self.keys.record(record.seq), record.to_json(), {"IfNoneMatch": "*"})

    def record_seqs(self, after_seq: int = 0) -> list[int]:
        """Recorded seqs greater than ``after_seq``, in order (one listing, keys sort by seq)."""
        paginator = self.archive.client.get_paginator("list_objects_v2")
        start = self.keys.record(after_seq) if after_seq > 0 else self.keys.records_prefix
        seqs = []
        for page in paginator.paginate(Bucket=self.archive.bucket, Prefix=self.keys.records_prefix, StartAfter=start):
            for item in page.get("Contents", []):
                seq = self.keys.seq_of(item["Key"])
                if seq is not None and seq > after_seq:
                    seqs.append(seq)
        return sorted(seqs)


@dataclass
class RecordingSummary:
    """What one ``record`` call did."""

    pages: int = 0
    events: int = 0
    final_events: int = 0
    duplicates: int = 0
    gaps: int = 0
    seq: int = 0
    at_end: bool = False
    retry_after: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class JournalRecorder:
    """
    Reads the journal from the recorded position and records each page; the one reader of a registration.

    Crash-safe in any order: a record written without its position update is adopted by the next
    recorder (roll-forward), and two recorders racing for the same ``seq`` cannot both win.
    On a 410 the recorder seeks back ``seek_on_gone_seconds`` and records a gap, so every consumer
    knows the list endpoint must settle the jobs still open.
    """

    def __init__(
        self,
        reader: PrivacyJournalReader,
        store: S3JournalStore,
        *,
        seek_on_gone_seconds: float = SEEK_ON_GONE_SECONDS,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.reader = reader
        self.store = store
        self.seek_on_gone_seconds = seek_on_gone_seconds
        self._now = now

    def _current(self):
        position, etag = self.store.read_position()
        while (record := self.store.get_record(position.seq + 1)) is not None:
            position = position.after(record, recent_event_ids=position.recent_event_ids)  # roll forward
        return position, etag

    async def record(self, *, max_pages: int = 1000, wait_at_end: float = 0.0) -> RecordingSummary:
        """Record pages until the journal's end (or ``max_pages``); keep waiting ``wait_at_end`` seconds
        at the end, honouring ``retry-after``, before returning."""
        from privacy_pipeline.events import EventDeduper, Gap, JournalRecord, format_seek, parse_journal_entry

        summary = RecordingSummary()
        waited = 0.0
        await self.reader.connection()
        async with self.reader.session() as http:
            while summary.pages < max_pages:
                position, etag = await asyncio.to_thread(self._current)
                gap = None
                try:
                    page = await self.reader.fetch(http, self.reader.first_url(position.position))
                except JournalPositionGone as gone:
                    seek = format_seek(self.seek_on_gone_seconds)
                    log.warning("Journal position expired; reading again from seek=%s (gap recorded)", seek)
                    gap = Gap("expired", gone.position, position.last_event_time, f"seek={seek}")
                    page = await self.reader.fetch(http, self.reader.first_url(None, seek=seek))
                summary.pages += 1
                if page.status == 204 and gap is None:
                    summary.at_end, summary.retry_after = True, page.retry_after
                    if waited + (page.retry_after or 0) > wait_at_end:
                        break
                    await self.reader._sleep(page.retry_after or DEFAULT_RETRY_AFTER_SECONDS)
                    waited += page.retry_after or DEFAULT_RETRY_AFTER_SECONDS
                    continue
                deduper = EventDeduper(DEDUPE_WINDOW, position.recent_event_ids)
                events, duplicates, ignored, malformed = [], 0, 0, []
                for entry in page.entries:
                    try:
                        event = parse_journal_entry(entry)
                    except ValueError as err:
                        malformed.append(str(err))
                        continue
                    if event is None:
                        ignored += 1
                    elif deduper.add(event.event_id):
                        events.append(event)
                    else:
                        duplicates += 1
                record = JournalRecord(
                    seq=position.seq + 1, since=position.position,
                    last=page.last if gap is not None else (page.last or position.position),
                    recorded_at=self._now().isoformat(), events=tuple(events), duplicates=duplicates,
                    ignored_types=ignored, malformed=tuple(malformed), gap=gap,
                )
                if not await asyncio.to_thread(self.store.put_record, record):
                    log.info("Record %d was written by another recorder; reading the position again", record.seq)
                    continue
                new_position = position.after(record, recent_event_ids=deduper.recent(DEDUPE_WINDOW))
                if not await asyncio.to_thread(self.store.write_position, new_position, etag):
                    log.info("The position moved under us; the next round rolls forward")
                summary.events += len(events)
                summary.final_events += sum(1 for event in events if event.is_final)
                summary.duplicates += duplicates
                summary.gaps += gap is not None
                summary.seq = record.seq
                if malformed:
                    log.warning("Record %d: %d malformed journal entries kept as problems", record.seq, len(malformed))
        log.info("Journal recording: %s", summary.as_dict())
        return summary


def record_journal(
    archive_uri: str,
    *,
    adobe_privacy_conn_id: str = DEFAULT_CONN_ID,
    aws_conn_id: str | None = "aws_default",
    registration_id: str = DEFAULT_REGISTRATION_ID,
    sse: str = "AES256",
    kms_key_id: str | None = None,
    max_pages: int = 1000,
) -> dict[str, Any]:
    """Drain the registration's journal into the ledger once (what the recorder task calls); its summary."""
    from privacy_pipeline.events import EventKeys

    from adobe_privacy.storage import PrivacyArchiveStore

    archive = PrivacyArchiveStore(archive_uri, aws_conn_id=aws_conn_id, sse=sse, kms_key_id=kms_key_id)
    store = S3JournalStore(archive, EventKeys(archive.prefix, registration_id))
    recorder = JournalRecorder(PrivacyJournalReader(adobe_privacy_conn_id), store)
    return asyncio.run(recorder.record(max_pages=max_pages)).as_dict()
