"""URLs that come from Adobe's answers: one strict parser decides, and what it returns is what is sent.

A download link (``downloadUrl``), a redirect's ``Location`` and a journal's ``Link`` are untrusted
input. Parsers disagree on odd URLs (``http://a\\@b/`` is host ``b`` for ``urllib.parse`` and host
``a`` for ``requests``), so anything a parser could read two ways is refused: userinfo, backslashes,
control characters and whitespace, percent-encoded or otherwise invalid host characters. Hosts are
normalised (case, one trailing dot, IDNA via UTS 46, as ``requests`` encodes them) before they are
compared, and the hooks send the URL rebuilt from the parsed parts, never the original string.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import NamedTuple

import idna

from adobe_privacy.exceptions import DownloadRefusedError, UrlRefusedError
from adobe_privacy.protocol.settings import PrivacyConnectionSettings, is_loopback_host

DEFAULT_PORTS = {"http": 80, "https": 443}
_FORBIDDEN_CHARS = re.compile(r"[\x00-\x20\x7f\\]")  # controls, whitespace, backslash: anywhere
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_PORT = re.compile(r"^[0-9]{1,5}$")
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")


@dataclass(frozen=True)
class CheckedUrl:
    """A URL that passed :func:`parse_strict_url`: its parts, and the one string built from them."""

    scheme: str
    host: str  # lower-case ASCII (IDNA), no trailing dot; an IPv6 literal without brackets
    port: int
    target: str  # path and query as given ("/" when empty); the fragment is dropped

    @property
    def origin(self) -> tuple[str, str, int]:
        return self.scheme, self.host, self.port

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if DEFAULT_PORTS[self.scheme] == self.port else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.netloc}{self.target}"


def normalize_host(host: str) -> str:
    """Lower-case ASCII form of a host name or IP literal; raises ValueError on anything else."""
    if not host or "%" in host:
        raise ValueError("empty or percent-encoded host")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError("unbalanced IPv6 brackets")
        return str(ipaddress.IPv6Address(host[1:-1]))
    if host.endswith("."):
        host = host[:-1]
    if not host.isascii():
        host = idna.encode(host, uts46=True).decode("ascii")
    host = host.lower()
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        pass
    labels = host.split(".")
    if not all(_HOST_LABEL.match(label) for label in labels):
        raise ValueError("invalid host name")
    if _NUMERIC_LABEL.match(labels[-1]):
        # "127.1", "0x7f.0.0.1", "2130706433": resolvers read these as IPv4 addresses; URL parsers don't.
        raise ValueError("a numeric host that is not a dotted-quad IPv4 address")
    return host


def _split_host_port(authority: str, scheme: str) -> tuple[str, int]:
    if authority.startswith("["):
        end = authority.find("]")
        host, rest = authority[: end + 1], authority[end + 1 :]
        if end < 0 or (rest and not rest.startswith(":")):
            raise ValueError("malformed IPv6 authority")
        port_text = rest[1:] if rest else ""
    else:
        host, _, port_text = authority.partition(":")
        if ":" in port_text:
            raise ValueError("more than one ':' in the authority")
    has_colon = ":" in (authority.rsplit("]", 1)[-1])
    if has_colon and not (_PORT.match(port_text) and 0 < int(port_text) < 65536):
        raise ValueError("invalid or empty port")
    return normalize_host(host), int(port_text) if port_text else DEFAULT_PORTS[scheme]


def parse_strict_url(url: object, *, what: str = "URL") -> CheckedUrl:
    """Parse an absolute http(s) URL or raise :class:`UrlRefusedError` saying why (the URL is not echoed)."""
    if not isinstance(url, str) or not url:
        raise UrlRefusedError(f"{what} is not a string URL")
    if _FORBIDDEN_CHARS.search(url):
        raise UrlRefusedError(f"{what} holds a control character, whitespace or a backslash")
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in DEFAULT_PORTS:
        raise UrlRefusedError(f"{what} is not an absolute http(s) URL")
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, target = rest[:end], rest[end:].partition("#")[0]
    if "@" in authority:
        raise UrlRefusedError(f"{what} carries userinfo (user:password@); refused")
    try:
        host, port = _split_host_port(authority, scheme)
    except (ValueError, idna.IDNAError) as err:
        raise UrlRefusedError(f"{what} has an invalid host ({err})") from None
    if not target.isascii():
        raise UrlRefusedError(f"{what} holds non-ASCII characters in its path or query")
    if not target.startswith("/"):
        target = "/" + target
    return CheckedUrl(scheme, host, port, target)


def parse_host_entry(entry: str) -> tuple[str, int | None]:
    """An allow-list entry ``host``, ``host:port``, ``[v6]:port`` or ``v6``, normalised like a URL's host."""
    entry = entry.strip()
    if entry.count(":") > 1 and not entry.startswith("["):
        entry = f"[{entry}]"
    has_port = bool(re.search(r":[0-9]+$", entry.rsplit("]", 1)[-1]))
    try:
        host, port = _split_host_port(entry, "https")
    except (ValueError, idna.IDNAError) as err:
        raise UrlRefusedError(f"download_hosts entry {entry!r} is not a host[:port] ({err})") from None
    return host, port if has_port else None


def origin_of(base_url: str) -> tuple[str, str, int]:
    return parse_strict_url(base_url, what="A configured base URL").origin


def require_secure(url: CheckedUrl, *, what: str) -> None:
    if url.scheme != "https" and not is_loopback_host(url.host):
        raise UrlRefusedError(f"{what} must use https (plain http is allowed only on loopback)")


# --------------------------------------------------------------------------------------------------
# Downloads: credentials only ever go to the configured API host
# --------------------------------------------------------------------------------------------------


class DownloadTarget(NamedTuple):
    """Where to fetch a content ZIP from, and whether our credentials may go with the request."""

    url: CheckedUrl
    authenticated: bool


def resolve_download_target(
    settings: PrivacyConnectionSettings, url: str, *, left_api_host: bool = False
) -> DownloadTarget:
    """Decide how (and whether) a download URL, or a redirect hop of one, may be fetched.

    On the API origin (same scheme, host and port) and before the chain ever left it: with our auth
    headers. Elsewhere: only if the host (or host:port) is in ``download_hosts``, with https (or
    loopback), and then with no credentials at all. A redirect back to the API host after a foreign hop
    is fetched anonymously too: a foreign server must not choose what we request with our token.
    """
    try:
        checked = parse_strict_url(url, what="A download URL")
        api_origin = origin_of(settings.api_base_url)
        if checked.origin == api_origin and not left_api_host:
            return DownloadTarget(checked, authenticated=True)
        allowed = False
        for entry in settings.download_hosts:
            host, port = parse_host_entry(entry)
            allowed = allowed or (host == checked.host and port in (None, checked.port))
        if not allowed and checked.origin != api_origin:
            raise UrlRefusedError(
                f"Refusing to download from {checked.netloc!r}: the host is not in the connection's "
                "download_hosts allow-list."
            )
        require_secure(checked, what="A download URL")
    except DownloadRefusedError:
        raise
    except UrlRefusedError as err:
        raise DownloadRefusedError(str(err)) from None
    return DownloadTarget(checked, authenticated=False)


def check_journal_url(settings: PrivacyConnectionSettings, url: str) -> CheckedUrl:
    """A journal URL (a ``Link`` header's or the configured one) must be on the configured journal origin."""
    if not settings.journal_url:
        from privacy_pipeline.errors import ConfigurationError

        raise ConfigurationError(
            f"connection {settings.conn_id} extra.journal_url",
            None,
            hint="the Adobe I/O Events journal URL of the event registration",
        )
    checked = parse_strict_url(url, what="A journal URL")
    if checked.origin != origin_of(settings.journal_url):
        raise UrlRefusedError(
            f"Refusing a journal URL on {checked.netloc!r}: not the configured journal host."
        )
    require_secure(checked, what="A journal URL")
    return checked
