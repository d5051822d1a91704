"""Operator extra links: the run's report, rejected rows, deadlines chart and folder, and Adobe's jobs UI.

Shaped like the Amazon provider's links: the operator knows the URLs at run time (it holds the S3
connection), so it pushes each one to XCom under a fixed key with `publish_links`, which also writes
them at the top of the task's log. At the end of the task Airflow calls `get_link` on the worker and
stores the answer for the UI; `get_link` only reads the XCom back, so the API server needs no S3
or Adobe connection.

Contract with the operators: each declares exactly the links it publishes in `operator_extra_links`
(Airflow asks every declared link for its XCom when the task ends; a key never pushed is logged at
ERROR as "XCom not found"), and calls `publish_links` first thing in `execute`, before any work, so
a task that fails later still shows where its run's outputs are.

Where a link points (Airflow's UI shows a button only for http(s) URLs; an `s3://` link stays in
the log header and the REST API):
- real S3 (no custom endpoint): the AWS S3 console (object page, or the folder's listing);
- a loopback endpoint (the demo's and the tests' moto): a path-style URL a local browser can open;
- any other custom endpoint (MinIO behind a proxy, ...): the plain `s3://` URI, which is at least
  copyable; such consoles have no URL scheme we could rely on.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urlsplit

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context
    from airflow.sdk.types import TaskInstanceKey

    from adobe_privacy.storage import PrivacyArchiveStore

#: XCom keys an operator pushes (through `publish_links`), one per link. Values are URLs.
RUN_FOLDER_KEY = "run_folder_url"
REPORT_KEY = "report_url"
REJECTS_KEY = "rejects_url"
DEADLINES_KEY = "deadlines_url"
PRIVACY_UI_KEY = "privacy_ui_url"

#: Adobe's Privacy Service UI in Experience Cloud (it opens on the signed-in user's organisation).
#: A deployment whose Experience Cloud URL carries its tenant sets the connection extra `privacy_ui_url`.
DEFAULT_PRIVACY_UI_URL = "https://experience.adobe.com/privacy/ui"

_LINK_SCHEMES = ("https", "http", "s3")


class _XComUrlLink(BaseOperatorLink):
    """A link whose URL the operator pushed to XCom under `key`; empty (no button) when it did not.

    A subclass names its button and key once, in its class line: `class X(_XComUrlLink, name=..., key=...)`.
    """

    name: ClassVar[str]
    key: ClassVar[str]

    def __init_subclass__(cls, *, name: str, key: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.name, cls.key = name, key

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        value = XCom.get_value(key=self.key, ti_key=ti_key)
        return value if isinstance(value, str) and urlsplit(value).scheme in _LINK_SCHEMES else ""


class RunFolderLink(_XComUrlLink, name="Run folder", key=RUN_FOLDER_KEY):
    """The run's folder in the archive."""


class RunReportLink(_XComUrlLink, name="Run report", key=REPORT_KEY):
    """The run's report (JSON)."""


class RejectedRowsLink(_XComUrlLink, name="Rejected rows", key=REJECTS_KEY):
    """The rows intake rejected (CSV)."""


class DeadlinesChartLink(_XComUrlLink, name="Deadlines chart", key=DEADLINES_KEY):
    """The deadlines chart of the run."""


class PrivacyServiceJobsLink(_XComUrlLink, name="Adobe Privacy Service jobs", key=PRIVACY_UI_KEY):
    """Adobe's Privacy Service UI."""


#: For get_provider_info's "extra-links" (so the UI can restore the buttons of serialized DAGs).
EXTRA_LINK_CLASSES = [
    f"{__name__}.{cls.__name__}"
    for cls in (RunFolderLink, RunReportLink, RejectedRowsLink, DeadlinesChartLink, PrivacyServiceJobsLink)
]


# ---- URLs --------------------------------------------------------------------------------------------
def _console_domain(region: str | None) -> str:
    if region and region.startswith("cn-"):
        return "console.amazonaws.cn"
    if region and region.startswith("us-gov-"):
        return "console.amazonaws-us-gov.com"
    return "console.aws.amazon.com"


def _is_loopback(endpoint_url: str) -> bool:
    host = urlsplit(endpoint_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def browsable_url(s3_uri: str, *, endpoint_url: str | None = None, region: str | None = None) -> str:
    """A URL a person can open for `s3://bucket/key` (a key ending in `/` is a folder).

    :param endpoint_url: the S3 connection's custom endpoint, None for AWS itself.
    :param region: the bucket's region, for the AWS console.
    """
    if not s3_uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {s3_uri!r}")
    bucket, _, key = s3_uri[len("s3://"):].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {s3_uri!r}")
    is_folder = key == "" or key.endswith("/")
    if endpoint_url:
        if not _is_loopback(endpoint_url):
            return s3_uri
        base = endpoint_url.rstrip("/")
        if is_folder:
            return f"{base}/{quote(bucket)}?list-type=2&prefix={quote(key, safe='')}"
        return f"{base}/{quote(bucket)}/{quote(key)}"
    console = f"https://s3.{_console_domain(region)}/s3"
    query = f"region={quote(region)}&" if region else ""
    if is_folder:
        return f"{console}/buckets/{quote(bucket)}?{query}prefix={quote(key, safe='')}&showversions=false"
    return f"{console}/object/{quote(bucket)}?{query}prefix={quote(key, safe='')}"


def privacy_ui_url(base: str | None = None) -> str:
    """Adobe's Privacy Service UI (the job list of the organisation the user signs in to)."""
    url = (base or DEFAULT_PRIVACY_UI_URL).strip()
    if urlsplit(url).scheme != "https":
        raise ValueError(f"the Privacy Service UI URL must be https: {url!r}")
    return url


@dataclass(frozen=True)
class LinkTarget:
    """One link: its button name, the object's own URI (for the log), and the URL the button opens."""

    name: str
    key: str
    uri: str
    url: str


def s3_location(store: PrivacyArchiveStore) -> tuple[str | None, str | None]:
    """The S3 connection's custom endpoint (None for AWS) and region, as the store's client uses them."""
    config = store.hook.conn_config
    return config.get_service_endpoint_url("s3"), store.hook.conn_region_name


def run_link_targets(
    store: PrivacyArchiveStore,
    run_root: str,
    *,
    report: str | None = None,
    rejects: str | None = None,
    deadlines: str | None = None,
) -> list[LinkTarget]:
    """The links of a run whose outputs live under the key `run_root` (keys of the store's bucket)."""
    endpoint_url, region = s3_location(store)
    outputs: list[tuple[type[_XComUrlLink], str | None]] = [
        (RunFolderLink, f"{run_root.rstrip('/')}/"),
        (RunReportLink, report),
        (RejectedRowsLink, rejects),
        (DeadlinesChartLink, deadlines),
    ]
    targets = []
    for link, object_key in outputs:
        if object_key:
            uri = store.uri(object_key)
            url = browsable_url(uri, endpoint_url=endpoint_url, region=region)
            targets.append(LinkTarget(link.name, link.key, uri, url))
    return targets


def privacy_ui_target(base: str | None = None) -> LinkTarget:
    url = privacy_ui_url(base)
    return LinkTarget(PrivacyServiceJobsLink.name, PrivacyServiceJobsLink.key, url, url)


def format_link_lines(targets: list[LinkTarget]) -> list[str]:
    """The log lines for `targets`: the object's URI, and the URL when it differs."""
    lines = []
    for target in targets:
        line = f"{target.name}: {target.uri}"
        if target.url != target.uri:
            line += f"  (open: {target.url})"
        lines.append(line)
    return lines


def publish_privacy_ui_link(context: Context | Mapping[str, Any], base: str | None, conn_id: str, log: Any) -> None:
    """Publish the Privacy Service UI link of a wait; a bad `privacy_ui_url` extra is only logged (Adobe's is used)."""
    try:
        target = privacy_ui_target(base)
    except ValueError as err:  # only a link: the wait goes on, and the log says what to fix
        log.warning("Connection %s: extra.privacy_ui_url ignored (%s)", conn_id, err)
        target = privacy_ui_target()
    publish_links(context, [target], log)


def publish_links(context: Context | Mapping[str, Any], targets: list[LinkTarget], log: Any) -> None:
    """Push each link's URL to XCom under its key and log the links: call it first thing in `execute`.

    Pushed before the work starts, so a task that fails later still shows where its run's outputs are.
    """
    ti = context["ti"]
    for target in targets:
        ti.xcom_push(key=target.key, value=target.url)
    for line in format_link_lines(targets):
        log.info("%s", line)
