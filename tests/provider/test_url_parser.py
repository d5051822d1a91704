"""The strict URL parser (no I/O): a seeded fuzzer with an oracle, scheme downgrades, and job ids.

Oracle: for every URL the parser accepts, the URL the hooks send (rebuilt from the parsed parts)
is read the same way by every parser on the path to the socket: requests/urllib3, ``urllib.parse``
and yarl (aiohttp). A URL they could read two ways must be refused instead.
"""

from __future__ import annotations

import json
import random
from urllib.parse import urlsplit

import pytest
import requests
import yarl
from adobe_privacy.exceptions import DownloadRefusedError, UntrustedIdError, UrlRefusedError
from adobe_privacy.protocol import (
    PrivacyConnectionSettings,
    check_journal_url,
    checked_job_id,
    parse_host_entry,
    parse_strict_url,
    resolve_download_target,
)
from airflow.sdk import Connection
from urllib3.util import parse_url

SEED = 20261130
PIECES = [
    "http://",
    "https://",
    "HTTP://",
    "//",
    "\\",
    "@",
    ":",
    "::",
    "/",
    "?",
    "#",
    "%",
    "%2e",
    "%40",
    "[",
    "]",
    ".",
    "..",
    "\u3002",
    "\uff0e",
    "\uff20",
    "\t",
    "\n",
    " ",
    "\x00",
    "\u00a0",
    "\u200b",
    "localhost",
    "LOCALHOST",
    "\uff4c\uff4f\uff43\uff41\uff4c",
    "127.0.0.1",
    "127.0.0.2",
    "0x7f",
    "8080",
    "::1",
    "user",
    "pw",
    "evil.example",
    "files.example.com",
    "xn--",
    "b\u00fccher",
    "-",
    "_",
    "a",
    "1",
]


def _fuzz_urls(count: int, seed: int = SEED) -> list[str]:
    rng = random.Random(seed)
    urls = []
    for _ in range(count):
        head = rng.choice(["http://", "https://", "HTTP://", ""])
        urls.append(head + "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 8))))
    return urls


def _others_read(url: str) -> set[tuple[str, str, int]]:
    """(scheme, host, port) as each library on the send path reads ``url``."""
    default = {"http": 80, "https": 443}
    readings = set()
    prepared = requests.Request("GET", url).prepare()
    parsed = parse_url(prepared.url)
    readings.add(
        (parsed.scheme, (parsed.host or "").strip("[]").lower(), parsed.port or default[parsed.scheme])
    )
    split = urlsplit(url)
    readings.add((split.scheme, (split.hostname or "").lower(), split.port or default[split.scheme]))
    y = yarl.URL(url)
    readings.add((y.scheme, (y.raw_host or "").lower(), y.port))
    return readings


def test_every_accepted_url_is_read_the_same_way_by_every_library():
    accepted = 0
    for raw in _fuzz_urls(4000):
        try:
            checked = parse_strict_url(raw)
        except UrlRefusedError:
            continue
        accepted += 1
        assert _others_read(checked.url) == {checked.origin}, (raw, checked)
        assert parse_strict_url(checked.url) == checked  # rebuilding is stable
    assert accepted > 100  # the corpus exercises the accepting side too


@pytest.mark.parametrize(
    "url, origin",
    [
        ("HTTP://LocalHost.:80/x", ("http", "localhost", 80)),
        ("https://B\u00fccher.Example/x?q#f", ("https", "xn--bcher-kva.example", 443)),
        ("http://[::1]:9/", ("http", "::1", 9)),
        ("https://files.example.com", ("https", "files.example.com", 443)),
    ],
)
def test_hosts_are_normalised_before_any_comparison(url, origin):
    assert parse_strict_url(url).origin == origin


@pytest.mark.parametrize(
    "entry, expected",
    [
        ("files.example.com", ("files.example.com", None)),
        ("Files.Example.COM.:8443", ("files.example.com", 8443)),
        ("[::1]:9", ("::1", 9)),
        ("::1", ("::1", None)),
    ],
)
def test_allow_list_entries_are_normalised_like_hosts(entry, expected):
    assert parse_host_entry(entry) == expected


def _settings(host: str = "https://platform.adobe.io", **extra) -> PrivacyConnectionSettings:
    return PrivacyConnectionSettings.from_connection(
        Connection(
            conn_id="c",
            conn_type="adobe_privacy_service",
            host=host,
            login="client",
            password="secret",
            extra=json.dumps({"org_id": "ORG@AdobeOrg", **extra}),
        )
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://platform.adobe.io/data/core/privacy/jobs/j/content",  # scheme downgrade of the API host
        "https://platform.adobe.io:8443/data/core/privacy/jobs/j/content",  # other port
        "http://files.example.com/x.zip",  # allow-listed host, plain http off loopback
        "https://platform.adobe.io.evil.example/x",
        "https://evil\\@files.example.com/x",
    ],
)
def test_downgrades_and_look_alikes_of_allowed_hosts_are_refused(url):
    with pytest.raises(DownloadRefusedError):
        resolve_download_target(_settings(download_hosts=["files.example.com"]), url)


def test_only_the_api_origin_gets_credentials_and_only_before_a_foreign_hop():
    settings = _settings(download_hosts=["files.example.com"])
    api = "https://PLATFORM.adobe.io./data/core/privacy/jobs/j/content"

    assert resolve_download_target(settings, api).authenticated
    assert not resolve_download_target(settings, api, left_api_host=True).authenticated
    assert not resolve_download_target(settings, "https://files.example.com/x.zip").authenticated


def test_journal_urls_must_stay_on_the_configured_journal_origin():
    settings = _settings(journal_url="https://events-va6.adobe.io/organizations/o/integrations/c/r")

    assert check_journal_url(settings, "https://EVENTS-va6.adobe.io/organizations/o/x?since=1").host == (
        "events-va6.adobe.io"
    )
    for url in (
        "https://events-va6.adobe.io.evil.example/x",
        "http://events-va6.adobe.io/x",
        "https://u@events-va6.adobe.io/x",
        "https://platform.adobe.io/x",
    ):
        with pytest.raises(UrlRefusedError):
            check_journal_url(settings, url)


@pytest.mark.parametrize(
    "value", ["6fc09b53-c24f-4a6c-9ca2-c6076b0842b6", "DI-1a2b3c", "BN-x_y", "A", "a" * 128]
)
def test_adobe_ids_pass(value):
    assert checked_job_id(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "../x",
        "..",
        ".",
        "/abs",
        "a/b",
        "a\\b",
        "a%2Fb",
        "C:x",
        "",
        "a" * 129,
        "-rf",
        "_x",
        "a b",
        "a\x00",
        "é",
        "a.zip",
        None,
        7,
        b"abc",
    ],
)
def test_untrusted_ids_are_refused_without_echoing_them(value):
    with pytest.raises(UntrustedIdError) as err:
        checked_job_id(value)
    assert isinstance(err.value, ValueError)
    if isinstance(value, str) and value:
        assert value not in str(err.value)
