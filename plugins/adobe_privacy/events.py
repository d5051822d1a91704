"""Adobe I/O Events journal: the async reader, the recorded journal in S3, and the recorder between them.

One recorder reads the journal of our event registration and records every page into the ledger as
an append-only series of small objects (``ledger/events/<registration>/records/<seq>.json``), then
moves the recorded position (``position.json``) with a conditional put. Waits and reconciliation read
the records, never the journal, so they cannot take events from each other and a restart resumes
from the recorded position. See :mod:`privacy_pipeline.events` for the rules (parsing, dedupe, gaps).

Connection: extras on the ``adobe_privacy_service`` connection:

- ``journal_url``: the registration's journal URL from Adobe Developer Console (required);
- ``events_conn_id``: another ``adobe_privacy_service`` connection whose client id and secret the
  journal wants (the credential the event registration belongs to); by default the same connection.

The token only ever goes to the configured journal URL's origin: a ``next`` link pointing elsewhere
is refused.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import aiohttp
import tenacity
from airflow.sdk.log import mask_secret

from adobe_privacy.exceptions import PrivacyServiceError, PrivacyTransientError
from adobe_privacy.protocol import (
    DEFAULT_CONN_ID,
    TOKEN_CACHE,
    PrivacyConnectionSettings,
    ReadRetryPolicy,
    classify_error,
    is_expired_token,
    parse_json_body,
    parse_retry_after,
    parse_token_response,
    require_secure_url,
)

log = logging.getLogger(__name__)

DEFAULT_RETRY_AFTER_SECONDS = 10.0
DEFAULT_PAGE_LIMIT = 1000
JOURNAL_RETENTION_SECONDS = 7 * 86400.0
#: On a 410 we seek back this far (the retention less a margin): everything the journal still has.
SEEK_ON_GONE_SECONDS = JOURNAL_RETENTION_SECONDS - 3600.0
DEDUPE_WINDOW = 2000
MAX_CAS_ATTEMPTS = 20
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


@dataclass(frozen=True)
class JournalConnection:
    """The journal URL and the settings (credential) the journal is read with."""

    journal_url: str
    settings: PrivacyConnectionSettings

    @property
    def origin(self) -> tuple[str, str]:
        parts = urlsplit(self.journal_url)
        return parts.scheme, parts.netloc.lower()

    def headers(self, token: str) -> dict[str, str]:
        """The journal's headers: note ``x-ims-org-id``, not the gateway's ``x-gw-ims-org-id``."""
        return {
            "Authorization": f"Bearer {token}",
            "x-api-key": self.settings.client_id,
            "x-ims-org-id": self.settings.org_id,
            "Accept": "application/json",
        }


def journal_url_of(conn: Any) -> str:
    """The ``journal_url`` extra of a connection, validated (https, or http on loopback)."""
    from privacy_pipeline.errors import ConfigurationError

    url = str((conn.extra_dejson or {}).get("journal_url") or "").strip()
    if not url:
        raise ConfigurationError(
            f"connection {conn.conn_id} extra.journal_url", url,
            hint="copy the journal URL of the event registration from Adobe Developer Console",
        )
    try:
        require_secure_url(url, what="The journal URL")
    except PrivacyServiceError as err:
        raise ConfigurationError(f"connection {conn.conn_id} extra.journal_url", url, hint=str(err)) from None
    return url


def since_of(url: str | None) -> str | None:
    """The ``since`` position carried by a ``next`` link."""
    if not url:
        return None
    values = parse_qs(urlsplit(url).query).get("since")
    return values[0] if values else None


class PrivacyJournalReader:
    """
    Async reader of one event registration's journal, on the async hook's connection and token cache.

    :param adobe_privacy_conn_id: the ``adobe_privacy_service`` connection with ``extra.journal_url``.
    :param page_limit: ``limit`` sent with every read (kept by Adobe in the ``next`` links).
    :param retry_policy: how transient failures (5xx, 429, timeouts) are retried.
    :param sleep: async sleep (injectable for tests).
    :param clock: epoch seconds, for token expiry.
    """

    def __init__(
        self,
        adobe_privacy_conn_id: str = DEFAULT_CONN_ID,
        *,
        page_limit: int = DEFAULT_PAGE_LIMIT,
        retry_policy: ReadRetryPolicy | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.adobe_privacy_conn_id = adobe_privacy_conn_id
        self.page_limit = page_limit
        self.retry_policy = retry_policy or ReadRetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._connection: JournalConnection | None = None
        self.calls = 0  # journal GETs sent (what the benchmark counts)

    async def connection(self) -> JournalConnection:
        if self._connection is None:
            from airflow.providers.common.compat.connection import get_async_connection

            from adobe_privacy.hooks import PrivacyServiceAsyncHook

            hook = PrivacyServiceAsyncHook(self.adobe_privacy_conn_id)
            conn = await get_async_connection(self.adobe_privacy_conn_id, hook=hook)
            url = journal_url_of(conn)
            events_conn_id = (conn.extra_dejson or {}).get("events_conn_id") or self.adobe_privacy_conn_id
            settings = await PrivacyServiceAsyncHook(events_conn_id).get_settings()
            self._connection = JournalConnection(journal_url=url, settings=settings)
        return self._connection

    def _retrying(self) -> tenacity.AsyncRetrying:
        return tenacity.AsyncRetrying(**self.retry_policy.tenacity_kwargs(self._sleep, log))

    async def _access_token(self, http: aiohttp.ClientSession, settings: PrivacyConnectionSettings) -> str:
        # The async hook's token logic on its public pieces (same cache key, so one token is shared).
        cached = TOKEN_CACHE.get(settings.cache_key, self._clock())
        if cached is not None:
            return cached.value

        async def request_token() -> bytes:
            async with http.post(settings.token_url, data=settings.token_form(), allow_redirects=False) as response:
                body = await response.read()
                if response.status >= 300:
                    raise classify_error(response.status, body, response.headers, operation="POST /ims/token/v3")
                return body

        token = parse_token_response(parse_json_body(await self._retrying()(request_token)), now=self._clock())
        mask_secret(token.value)
        TOKEN_CACHE.put(settings.cache_key, token)
        return token.value

    def first_url(self, position: str | None, *, seek: str | None = None, latest: bool = False) -> str:
        """The journal URL for a first read: ``since`` a position, a ``seek`` back, ``latest``, or the oldest."""
        assert self._connection is not None
        params: dict[str, Any] = {"limit": self.page_limit}
        if position is not None:
            params["since"] = position
        elif seek is not None:
            params["seek"] = seek
        elif latest:
            params["latest"] = "true"
        separator = "&" if urlsplit(self._connection.journal_url).query else "?"
        return f"{self._connection.journal_url}{separator}{urlencode(params, safe=':')}"

    async def fetch(self, http: aiohttp.ClientSession, url: str) -> JournalPage:
        """One journal read (token renewed once on a 401, transient failures retried).

        :raises JournalPositionGone: 410, the position expired.
        """
        from privacy_pipeline.events import parse_link_header

        connection = await self.connection()
        if urlsplit(url).scheme and (urlsplit(url).scheme, urlsplit(url).netloc.lower()) != connection.origin:
            raise PrivacyServiceError("refusing a journal link to another host than the configured journal URL")

        async def attempt() -> tuple[int, bytes, Any]:
            for renewal in (1, 2):
                token = await self._access_token(http, connection.settings)
                self.calls += 1
                try:
                    async with http.get(url, headers=connection.headers(token), allow_redirects=False) as response:
                        body = await response.read()
                        if response.status in (200, 204):
                            return response.status, body, response.headers
                        if response.status == 410:
                            raise JournalPositionGone(since_of(url))
                        raise classify_error(response.status, body, response.headers, operation=OPERATION)
                except aiohttp.ClientConnectorError:
                    raise PrivacyTransientError(f"{OPERATION} failed: could not connect", request_sent=False) from None
                except (TimeoutError, aiohttp.ClientError) as err:
                    raise PrivacyTransientError(f"{OPERATION} failed: {type(err).__name__}") from None
                except PrivacyServiceError as err:
                    if renewal == 1 and is_expired_token(err):
                        TOKEN_CACHE.invalidate(connection.settings.cache_key, token)
                        continue
                    raise
            raise AssertionError("unreachable")

        status, body, headers = await self._retrying()(attempt)
        links = parse_link_header(headers.getall("Link", []))
        next_url = urljoin(connection.journal_url, links["next"]) if "next" in links else None
        retry_after = parse_retry_after(headers.get("retry-after"))
        if status == 204:
            return JournalPage(204, [], since_of(next_url) or since_of(url), next_url,
                               DEFAULT_RETRY_AFTER_SECONDS if retry_after is None else retry_after)
        document = json.loads(body)
        entries = document.get("events") or []
        last = (document.get("_page") or {}).get("last") or (entries[-1].get("position") if entries else None)
        return JournalPage(200, entries, last, next_url, retry_after)

    def session(self) -> aiohttp.ClientSession:
        # TLS verification is aiohttp's default; trust_env stays off so no .netrc credentials leak.
        timeout = self._connection.settings.timeout if self._connection else 60.0
        return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout))


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
    registration_id: str = "privacy-events",
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
