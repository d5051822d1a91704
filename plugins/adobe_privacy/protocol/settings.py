"""Connection settings of an ``adobe_privacy_service`` connection, validated once. No I/O."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from adobe_privacy.exceptions import PrivacyServiceError

# The connection type and its defaults are the provider metadata's (import-free, for the connection form).
from adobe_privacy.get_provider_info import CONNECTION_TYPE as CONN_TYPE
from adobe_privacy.get_provider_info import DEFAULT_IMS_URL, DEFAULT_SANDBOX_NAME, DEFAULT_SCOPES

DEFAULT_CONN_ID = "adobe_privacy_default"
DEFAULT_PRIVACY_PATH = "/data/core/privacy"
DEFAULT_HYGIENE_PATH = "/data/core/hygiene"
DEFAULT_TIMEOUT_SECONDS = 60.0  # Adobe's gateway drops requests that run longer than 60 s.
IMS_TOKEN_PATH = "/ims/token/v3"
MAX_PAGE_SIZE = 1000  # the Privacy Service guide's maximum `size`
FALLBACK_PAGE_SIZE = 100  # the maximum of Adobe's OpenAPI file, used when a server refuses 1000


def is_loopback_host(hostname: str | None) -> bool:
    """Whether ``hostname`` is localhost or a loopback address (127.0.0.0/8, ::1)."""
    if not hostname:
        return False
    if hostname.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname.strip("[]")).is_loopback
    except ValueError:
        return False


def require_secure_url(url: str, *, what: str) -> None:
    """Refuse plain HTTP anywhere but loopback, where our emulator runs."""
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(parts.hostname)):
        return
    raise PrivacyServiceError(f"{what} must use https (plain http is allowed only on loopback): {url!r}")


def _split_list(value: Any) -> tuple[str, ...]:
    """Accept a JSON list or a comma-separated string (what a UI text field produces)."""
    if value in (None, ""):
        return ()
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return tuple(str(item).strip() for item in value if str(item).strip())


def _extra_value(extra: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """Read an extra field, also under the ``extra__<conn_type>__`` prefix older UIs write."""
    for key in (name, f"extra__{CONN_TYPE}__{name}"):
        if extra.get(key) not in (None, ""):
            return extra[key]
    return default


def _page_size(conn_id: str, value: Any) -> int | None:
    if value is None:
        return None
    try:
        size = int(value)
    except (TypeError, ValueError):
        size = 0
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise PrivacyServiceError(
            f"Connection {conn_id!r}: extra.page_size must be an integer from 1 to {MAX_PAGE_SIZE}, "
            f"got {value!r}."
        )
    return size


@dataclass(frozen=True)
class PrivacyConnectionSettings:
    """Everything the hooks need from an ``adobe_privacy_service`` connection, validated once."""

    conn_id: str
    api_base_url: str
    client_id: str
    client_secret: str = field(repr=False)
    org_id: str
    ims_url: str = DEFAULT_IMS_URL
    scopes: str = DEFAULT_SCOPES
    sandbox_name: str = DEFAULT_SANDBOX_NAME
    download_hosts: tuple[str, ...] = ()
    privacy_path: str = DEFAULT_PRIVACY_PATH
    hygiene_path: str = DEFAULT_HYGIENE_PATH
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    page_base: int | None = None
    page_size: int | None = None
    journal_url: str | None = None

    @classmethod
    def from_connection(cls, conn: Any) -> PrivacyConnectionSettings:
        """Build from an Airflow ``Connection`` (host = API base URL, login/password = client id/secret)."""
        # Not `extra_dejson`: it registers every extra value as a secret to mask and warns about the
        # short ones ("prod"); the extra as a whole is masked when the connection is fetched.
        try:
            extra = json.loads(conn.extra) if conn.extra else {}
        except ValueError:
            raise PrivacyServiceError(f"Connection {conn.conn_id!r} has an extra that is not JSON.") from None
        if not isinstance(extra, dict):
            raise PrivacyServiceError(f"Connection {conn.conn_id!r} has an extra that is not a JSON object.")
        host = (conn.host or "").rstrip("/")
        if not host:
            raise PrivacyServiceError(f"Connection {conn.conn_id!r} has no host (the API base URL).")
        if "://" not in host:
            host = f"https://{host}"
        if conn.port and urlsplit(host).port is None:
            host = f"{host}:{conn.port}"
        org_id = _extra_value(extra, "org_id")
        if not (conn.login and conn.password and org_id):
            raise PrivacyServiceError(
                f"Connection {conn.conn_id!r} needs login (client id), password (client secret) "
                "and extra.org_id."
            )
        page_base = _extra_value(extra, "page_base")
        journal_url = _extra_value(extra, "journal_url")
        settings = cls(
            conn_id=conn.conn_id,
            api_base_url=host,
            client_id=conn.login,
            client_secret=conn.password,
            org_id=org_id,
            ims_url=str(_extra_value(extra, "ims_url", DEFAULT_IMS_URL)).rstrip("/"),
            scopes=",".join(_split_list(_extra_value(extra, "scopes", DEFAULT_SCOPES))),
            sandbox_name=str(_extra_value(extra, "sandbox_name", DEFAULT_SANDBOX_NAME)),
            download_hosts=_split_list(_extra_value(extra, "download_hosts")),
            privacy_path="/" + str(_extra_value(extra, "privacy_path", DEFAULT_PRIVACY_PATH)).strip("/"),
            hygiene_path="/" + str(_extra_value(extra, "hygiene_path", DEFAULT_HYGIENE_PATH)).strip("/"),
            timeout=float(_extra_value(extra, "timeout", DEFAULT_TIMEOUT_SECONDS)),
            page_base=int(page_base) if page_base is not None else None,
            page_size=_page_size(conn.conn_id, _extra_value(extra, "page_size")),
            journal_url=str(journal_url).rstrip("/") if journal_url else None,
        )
        require_secure_url(settings.api_base_url, what="The API base URL")
        require_secure_url(settings.ims_url, what="The IMS URL")
        if settings.journal_url:
            require_secure_url(settings.journal_url, what="The journal URL")
        return settings

    @property
    def token_url(self) -> str:
        return f"{self.ims_url}{IMS_TOKEN_PATH}"

    @property
    def cache_key(self) -> tuple[str, str, str]:
        return (self.conn_id, self.client_id, self.ims_url)

    def privacy_url(self, path: str) -> str:
        return f"{self.api_base_url}{self.privacy_path}{path}"

    def hygiene_url(self, path: str) -> str:
        return f"{self.api_base_url}{self.hygiene_path}{path}"

    def token_form(self) -> dict[str, str]:
        return {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "scope": self.scopes,
        }

    def api_headers(self, token: str, *, hygiene: bool = False) -> dict[str, str]:
        """The gateway headers; ``x-sandbox-name`` only on the Data Hygiene API, which needs it."""
        headers = {
            "Authorization": f"Bearer {token}",
            "x-api-key": self.client_id,
            "x-gw-ims-org-id": self.org_id,
            "Accept": "application/json",
        }
        if hygiene:
            headers["x-sandbox-name"] = self.sandbox_name
        return headers

    def journal_headers(self, token: str) -> dict[str, str]:
        """Adobe I/O Events' journal wants ``x-ims-org-id``, not the gateway's ``x-gw-ims-org-id``."""
        return {"Authorization": f"Bearer {token}", "x-api-key": self.client_id, "x-ims-org-id": self.org_id}
