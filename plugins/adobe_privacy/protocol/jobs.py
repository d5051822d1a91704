"""Jobs and work orders on the wire: ids, normalisation, list paging and the summary walk. No I/O.

The walks here are sans-I/O generators: they yield the next request (:class:`PageRequest`), receive
the answer's body, and return their result. :func:`drive` and :func:`adrive` run one with the hook's
own fetch function, so the sync and async hooks share every rule and only fetch pages.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, ClassVar, NamedTuple, Required, TypedDict, TypeVar, Unpack

from adobe_privacy.exceptions import PrivacyServiceError, SubmittedUser, UntrustedIdError
from adobe_privacy.protocol.errors import refuses_page_size
from adobe_privacy.protocol.settings import FALLBACK_PAGE_SIZE, MAX_PAGE_SIZE, PrivacyConnectionSettings

# Statuses after which a job never changes again. Anything else, including a status Adobe adds
# later, counts as still open: waiting longer is safe, declaring an unknown state done is not.
TERMINAL_STATUSES = frozenset({"complete", "error", "cancelled"})
FAILED_STATUSES = frozenset({"error", "cancelled"})
WORKORDER_TERMINAL_STATUSES = frozenset({"completed", "failed"})
WORKORDER_FAILED_STATUSES = frozenset({"failed"})
MISSING_STATUS = "missing"
MAX_WORKORDER_PAGE_SIZE = 100  # `limit` of GET /workorder is 1-100

# Adobe's ids are UUIDs (jobs), `DI-<uuid>` / `BN-<uuid>` (work orders and bundles): letters, digits,
# `-` and `_`. Nothing else (no `.`, `/`, `\`, `%`, `:`) may reach a file path or an S3 key.
_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")

Date = date | datetime | str | None
T = TypeVar("T")
S = TypeVar("S")


def checked_job_id(value: object) -> str:
    """``value`` if it is an id in Adobe's alphabet, else :class:`~adobe_privacy.exceptions.UntrustedIdError`.

    Job and work-order ids come from Adobe's answers: call this before an id touches a path, an S3 key
    or a URL. The error shows the id's length, not the id.
    """
    if isinstance(value, str) and _ID_PATTERN.fullmatch(value):
        return value
    shown = (
        f"a {type(value).__name__} of length {len(value)}" if isinstance(value, str) else repr(type(value))
    )
    raise UntrustedIdError(
        f"Refusing an id from the API that is not 1-128 of [A-Za-z0-9_-] (starting alphanumeric): {shown}"
    )


# --------------------------------------------------------------------------------------------------
# Normalisation of Adobe's documented ambiguities
# --------------------------------------------------------------------------------------------------


class CreatedJob(NamedTuple):
    """One job created by ``POST /jobs``: one per (user key, action)."""

    job_id: str
    user_key: str
    action: str


def submitted_users(payload: Mapping[str, Any]) -> list[SubmittedUser]:
    """The keys and actions of a create payload: what an outcome-unknown error may safely carry."""
    users = payload.get("users") or []
    return [
        SubmittedUser(str(u.get("key")), tuple(u.get("action") or ())) for u in users if isinstance(u, dict)
    ]


def parse_created_jobs(body: Mapping[str, Any]) -> list[CreatedJob]:
    """Read a create answer: ``jobs`` (docs) or ``jobDetails`` (OAS schema), one action per job."""
    items = body.get("jobs")
    if items is None:
        items = body.get("jobDetails") or []
    created = []
    for item in items:
        user = (item.get("customer") or {}).get("user") or {}
        actions = user.get("action") or item.get("action") or []
        if isinstance(actions, str):
            actions = [actions]
        user_key = user.get("key", item.get("userKey"))
        for action in actions or [None]:
            created.append(CreatedJob(str(item["jobId"]), str(user_key), str(action)))
    return created


def normalize_job(raw: Mapping[str, Any]) -> dict[str, Any]:
    """One spelling for every field Adobe spells two ways; everything else (and unknown statuses) kept.

    ``downloadUrl`` (content page, captured responses) and ``downloadURL`` (the jobs guide's example)
    both become ``downloadUrl``; ``userIDs``/``userIds`` become ``userIds``; the status is lower-cased.
    """
    job = dict(raw)
    download_url = job.pop("downloadURL", None)
    if not job.get("downloadUrl") and download_url:
        job["downloadUrl"] = download_url
    user_ids = job.pop("userIDs", None)
    if "userIds" not in job and user_ids is not None:
        job["userIds"] = user_ids
    if isinstance(job.get("status"), str):
        job["status"] = job["status"].strip().lower()
    return job


def list_items(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The items of a list answer: ``jobDetails`` (OAS, scripts), ``jobs``, or ``results`` (work orders)."""
    for key in ("jobDetails", "jobs", "results"):
        if isinstance(body.get(key), list):
            return [item for item in body[key] if isinstance(item, dict)]
    return []


def format_list_date(value: Date) -> str | None:
    """``fromDate``/``toDate`` are ``YYYY-MM-DD`` (read as GMT)."""
    if value is None or isinstance(value, str):
        return value[:10] if isinstance(value, str) else None
    if isinstance(value, datetime) and value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d")


def list_params(
    *, regulation: str | None, status: str | None, from_date: Date, to_date: Date, page_size: int
) -> dict[str, Any]:
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")
    if (from_date is None) != (to_date is None):
        raise ValueError("from_date and to_date must be given together (Adobe answers 400 otherwise)")
    params: dict[str, Any] = {"size": page_size}
    for name, value in (
        ("regulation", regulation),
        ("status", status),
        ("fromDate", format_list_date(from_date)),
        ("toDate", format_list_date(to_date)),
    ):
        if value is not None:
            params[name] = value
    return params


def workorder_list_params(
    *,
    search: str | None = None,
    status: str | Iterable[str] | None = None,
    from_date: Date = None,
    to_date: Date = None,
    page_size: int = MAX_WORKORDER_PAGE_SIZE,
) -> dict[str, Any]:
    """The query of ``GET /workorder`` (record-delete orders only; ``status`` a comma list)."""
    if not 1 <= page_size <= MAX_WORKORDER_PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {MAX_WORKORDER_PAGE_SIZE}, got {page_size}")
    if (from_date is None) != (to_date is None):
        raise ValueError("from_date and to_date must be given together")
    params: dict[str, Any] = {"type": "identity-delete", "limit": page_size}
    if status is not None:
        params["status"] = status if isinstance(status, str) else ",".join(status)
    for name, value in (
        ("search", search),
        ("fromDate", format_list_date(from_date)),
        ("toDate", format_list_date(to_date)),
    ):
        if value is not None:
            params[name] = value
    return params


class ListPager:
    """Walks a list endpoint whatever its page base, yielding each item once.

    Adobe documents 0-based pages, its OpenAPI file says 1, and a 1-based server may refuse page 0.
    Unless the connection names the base, the first request carries no ``page`` at all (the server's
    own first page), then pages 1, 2, ... follow; ids are de-duplicated, so a 1-based server costs one
    repeated page, never duplicates or a 400. The walk stops on an empty or short page, once the total
    (read as the total across pages) was seen, or after two pages in a row that bring nothing new (a
    server ignoring ``page``). A 400 that blames the page size makes it fall back to 100 (Adobe's
    OpenAPI maximum) and ask the same page again.
    """

    size_param: ClassVar[str] = "size"
    id_key: ClassVar[str] = "jobId"
    total_key: ClassVar[str] = "totalRecords"

    def __init__(
        self,
        page_size: int,
        page_base: int | None = None,
        max_pages: int = 100_000,
        on_fall_back: Callable[[int], None] | None = None,
    ):
        self.page_size = page_size
        self.on_fall_back = on_fall_back
        self.page: int | None = page_base
        self.max_pages = max_pages
        self.done = False
        self.calls = 0
        self._seen: set[Any] = set()
        self._pages_without_news = 0

    @staticmethod
    def normalize(item: Mapping[str, Any]) -> dict[str, Any]:
        return normalize_job(item)

    def next_params(self, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """The query of the next page request, or None when the walk is over."""
        if self.done or self.calls >= self.max_pages:
            return None
        query = {**params, self.size_param: self.page_size}
        return query if self.page is None else {**query, "page": self.page}

    def fall_back(self, error: BaseException) -> bool:
        """After a 400 blaming the page size: shrink it (once) and say so; the same page is asked again."""
        if self.page_size > FALLBACK_PAGE_SIZE and refuses_page_size(error):
            self.page_size = FALLBACK_PAGE_SIZE
            if self.on_fall_back is not None:
                self.on_fall_back(self.page_size)
            return True
        return False

    def accept(self, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Record one page's answer and return its items not seen before, normalised."""
        self.calls += 1
        items = list_items(body)
        fresh = []
        for item in items:
            item_id = item.get(self.id_key)
            if item_id in self._seen:
                continue
            self._seen.add(item_id)
            fresh.append(self.normalize(item))
        self._pages_without_news = 0 if fresh else self._pages_without_news + 1
        total = body.get(self.total_key)
        # The total is read as the total across pages only when it says more than this page holds
        # (the OAS reads totalRecords as the page's own count); a short page ends the walk unless it says more.
        across = total if isinstance(total, int) and total > len(items) else None
        reached_total = across is not None and len(self._seen) >= across
        short_page = len(items) < self.page_size and not (across is not None and len(self._seen) < across)
        if not items or short_page or reached_total or self._pages_without_news >= 2:
            self.done = True
        self.page = 1 if self.page is None else self.page + 1
        return fresh


class WorkOrderPager(ListPager):
    """``GET /workorder``: ``limit`` (1-100) and ``{results, total, count, _links}``.

    The ``_links`` hrefs of Adobe's examples omit the base path, so page URLs are built here, not
    followed.
    """

    size_param = "limit"
    id_key = "workorderId"
    total_key = "total"

    @staticmethod
    def normalize(item: Mapping[str, Any]) -> dict[str, Any]:
        order = dict(item)
        if isinstance(order.get("status"), str):
            order["status"] = order["status"].strip().lower()
        return order

    def fall_back(self, error: BaseException) -> bool:
        return False  # 100 is already the documented maximum


def iter_pages(pager: ListPager, params: Mapping[str, Any]) -> Generator[dict[str, Any], None, None]:
    """The query parameters of each page request, until the pager is done (re-read after a fall-back)."""
    while (page_params := pager.next_params(params)) is not None:
        yield page_params


# --------------------------------------------------------------------------------------------------
# Job summaries (what the triggers and sensors report)
# --------------------------------------------------------------------------------------------------


@dataclass
class JobsSummary:
    """Counts by status over the jobs we wait for. Unknown statuses count as open."""

    counts: dict[str, int] = field(default_factory=dict)
    open: int = 0
    error_job_ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "counts": dict(sorted(self.counts.items())),
            "open": self.open,
            "error_job_ids": self.error_job_ids,
        }


class SummaryBuilder:
    """Collects statuses from list pages for the jobs we wait on; knows when it has seen them all."""

    def __init__(
        self,
        jobs_by_regulation: Mapping[str, Iterable[str]],
        *,
        id_key: str = "jobId",
        terminal: frozenset[str] = TERMINAL_STATUSES,
        failed: frozenset[str] = FAILED_STATUSES,
    ):
        self.wanted: dict[str, set[str]] = {reg: set(ids) for reg, ids in jobs_by_regulation.items()}
        self.status: dict[str, str] = {}
        self.id_key, self.terminal, self.failed = id_key, terminal, failed

    def observe(self, regulation: str, jobs: Iterable[Mapping[str, Any]]) -> None:
        wanted = self.wanted.get(regulation, set())
        for job in jobs:
            if job.get(self.id_key) in wanted:
                self.status[job[self.id_key]] = str(job.get("status") or "unknown")

    def all_seen(self, regulation: str) -> bool:
        return self.wanted.get(regulation, set()) <= self.status.keys()

    def build(self) -> JobsSummary:
        summary = JobsSummary()
        for regulation in sorted(self.wanted):
            for job_id in sorted(self.wanted[regulation]):
                # A job absent from its window is counted as open: it surfaces at the deadline.
                status = self.status.get(job_id, MISSING_STATUS)
                summary.counts[status] = summary.counts.get(status, 0) + 1
                if status in self.failed:
                    summary.error_job_ids.append(job_id)
                elif status not in self.terminal:
                    summary.open += 1
        return summary


@dataclass(frozen=True)
class PageRequest:
    """Fetch one list page: ``key`` says which list (a regulation, ``hygiene``, ``workorder``)."""

    key: str
    params: dict[str, Any]


Walk = Generator[PageRequest, Any, T]


def job_summary_walk(
    jobs_by_key: Mapping[str, Iterable[str]],
    *,
    list_query: Callable[[str], Mapping[str, Any]],
    page_size: int,
    page_base: int | None,
    pager_class: type[ListPager] = ListPager,
    builder: SummaryBuilder | None = None,
    on_fall_back: Callable[[int], None] | None = None,
) -> Walk[dict[str, Any]]:
    """Status counts over the wanted jobs from their LIST endpoint, stopping once all were seen.

    About one call per ``page_size`` jobs in the window per key. ``list_query(key)`` gives the query of
    one key's list (its regulation, date window). Returns
    ``{"counts": {status: n}, "open": n, "error_job_ids": [...]}``; jobs absent from the list count
    as ``missing`` and as open.
    """
    builder = builder or SummaryBuilder(jobs_by_key)
    for key in sorted(builder.wanted):
        if not builder.wanted[key]:
            continue
        pager = pager_class(page_size, page_base, on_fall_back=on_fall_back)
        for params in iter_pages(pager, list_query(key)):
            try:
                body = yield PageRequest(key, params)
            except PrivacyServiceError as err:
                if pager.fall_back(err):
                    continue
                raise
            builder.observe(key, pager.accept(body))
            if builder.all_seen(key):
                break
    return builder.build().as_dict()


@dataclass(frozen=True)
class ListKind:
    """One list endpoint: where it is, how its pages read, which statuses end its items."""

    name: str
    hygiene: bool  # under the hygiene base path, with x-sandbox-name
    path: str
    pager: type[ListPager]
    terminal: frozenset[str]
    failed: frozenset[str]
    by_regulation: bool  # one list per regulation (privacy jobs) or one list for all
    max_page_size: int = MAX_PAGE_SIZE

    def url(self, settings: PrivacyConnectionSettings) -> str:
        return settings.hygiene_url(self.path) if self.hygiene else settings.privacy_url(self.path)

    def query(self, key: str, *, from_date: Date, to_date: Date, page_size: int) -> dict[str, Any]:
        if self.pager is WorkOrderPager:
            return workorder_list_params(from_date=from_date, to_date=to_date, page_size=page_size)
        regulation = key if self.by_regulation else None
        return list_params(
            regulation=regulation, status=None, from_date=from_date, to_date=to_date, page_size=page_size
        )


PRIVACY_JOBS = ListKind("jobs", False, "/jobs", ListPager, TERMINAL_STATUSES, FAILED_STATUSES, True)
HYGIENE_JOBS = ListKind("hygiene jobs", True, "/jobs", ListPager, TERMINAL_STATUSES, FAILED_STATUSES, False)
WORK_ORDERS = ListKind(
    "work orders",
    True,
    "/workorder",
    WorkOrderPager,
    WORKORDER_TERMINAL_STATUSES,
    WORKORDER_FAILED_STATUSES,
    False,
    MAX_WORKORDER_PAGE_SIZE,
)


class JobListFilters(TypedDict, total=False):
    """The optional filters of a job list (``iter_jobs`` and ``iter_hygiene_jobs`` of both hooks): a
    status, and a GMT date window whose ends come together (Adobe answers 400 otherwise)."""

    status: str | None
    from_date: Date
    to_date: Date


class WorkOrderListFilters(TypedDict, total=False):
    """The optional filters of ``GET /workorder`` (``iter_workorders`` of both hooks)."""

    search: str | None
    status: str | list[str] | None
    from_date: Date
    to_date: Date


class SummaryWindow(TypedDict, total=False):
    """What a status summary lists: the GMT creation window of its jobs, and optionally the page size."""

    from_date: Required[Date]
    to_date: Required[Date]
    page_size: int | None


@dataclass(frozen=True)
class ListRequest:
    """One whole list to read page by page: the endpoint, its query (without the page), the page size."""

    kind: ListKind
    params: dict[str, Any]
    page_size: int


def job_list_request(
    kind: ListKind, page_size: int, *, regulation: str | None = None, **filters: Unpack[JobListFilters]
) -> ListRequest:
    """A list of privacy or hygiene jobs (one regulation per privacy list)."""
    params = list_params(
        regulation=regulation,
        status=filters.get("status"),
        from_date=filters.get("from_date"),
        to_date=filters.get("to_date"),
        page_size=page_size,
    )
    return ListRequest(kind, params, page_size)


def workorder_list_request(
    page_size: int = MAX_WORKORDER_PAGE_SIZE, **filters: Unpack[WorkOrderListFilters]
) -> ListRequest:
    """A list of record-delete work orders."""
    return ListRequest(WORK_ORDERS, workorder_list_params(page_size=page_size, **filters), page_size)


def summary_walk(
    kind: ListKind,
    wanted: Mapping[str, Iterable[str]],
    *,
    from_date: Date,
    to_date: Date,
    page_size: int,
    page_base: int | None,
    on_fall_back: Callable[[int], None] | None = None,
) -> Walk[dict[str, Any]]:
    """:func:`job_summary_walk` over one kind of list (privacy jobs by regulation, hygiene jobs, work orders)."""
    return job_summary_walk(
        wanted,
        list_query=lambda key: kind.query(key, from_date=from_date, to_date=to_date, page_size=page_size),
        page_size=page_size,
        page_base=page_base,
        pager_class=kind.pager,
        builder=SummaryBuilder(wanted, id_key=kind.pager.id_key, terminal=kind.terminal, failed=kind.failed),
        on_fall_back=on_fall_back,
    )


def _resume(steps: Generator[S, Any, T], reply: Any, error: PrivacyServiceError | None) -> tuple[bool, Any]:
    """Send ``reply`` (or throw ``error``) into a walk: (finished, its result) or (False, its next step)."""
    try:
        return False, (steps.send(reply) if error is None else steps.throw(error))
    except StopIteration as done:
        return True, done.value


def drive(steps: Generator[S, Any, T], perform: Callable[[S], Any]) -> T:
    """Run a sans-I/O walk: ``perform`` each step, send its result back (or throw its error in)."""
    finished, value = _resume(steps, None, None)
    while not finished:
        try:
            reply, error = perform(value), None
        except PrivacyServiceError as err:
            reply, error = None, err
        finished, value = _resume(steps, reply, error)
    return value


async def adrive(steps: Generator[S, Any, T], perform: Callable[[S], Awaitable[Any]]) -> T:
    """:func:`drive` for an async ``perform``."""
    finished, value = _resume(steps, None, None)
    while not finished:
        try:
            reply, error = await perform(value), None
        except PrivacyServiceError as err:
            reply, error = None, err
        finished, value = _resume(steps, reply, error)
    return value
