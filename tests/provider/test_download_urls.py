"""Download URLs from Adobe's answers against real servers: one parser decides, and nothing leaks.

Three recording servers: the API host (a stand-in on 127.0.0.1 that answers content requests), an
allow-listed download host (127.0.0.1, reached as ``localhost``) and an attacker's host on another
loopback address (127.0.0.2), which must never receive a request. Tokens come from the emulator's
IMS. Every case also checks that no Authorization (or any other credential) header ever reached a
host other than the API host, including when ``~/.netrc`` names those hosts.
"""

from __future__ import annotations

import json

import pytest
from adobe_privacy.exceptions import DownloadRefusedError, PrivacyServiceError, PrivacyTerminalError
from adobe_privacy.hooks import PrivacyServiceHook
from adobe_privacy.protocol import ReadRetryPolicy

from tests.provider.recording_server import ZIP_BYTES, Answer, RecordingServer

CREDENTIAL_HEADERS = {"authorization", "x-api-key", "x-gw-ims-org-id", "x-ims-org-id", "cookie"}
CONTENT = "/data/core/privacy/jobs/{}/content"

REFUSED = [
    "http://127.0.0.2:{B}\\@localhost:{A}/x.zip",  # requests reads host 127.0.0.2, urllib localhost
    "http://localhost:{A}\\@127.0.0.2:{B}/x.zip",
    "http://localhost:{A}@127.0.0.2:{B}/x.zip",  # userinfo
    "http://API@localhost:{A}/x.zip",  # userinfo on an allowed host: requests would send Basic auth
    "http://user:secret@localhost:{A}/x.zip",
    "https://localhost:{A}@127.0.0.2:{B}/x.zip",
    "http://127.0.0.2:{B}/x.zip",  # not allow-listed
    "http://localhost:{B}/x.zip",  # allowed host, other port
    "http://127%2e0%2e0%2e2:{B}/x.zip",  # percent-encoded host
    "http://%6cocalhost:{A}/x.zip",  # encoded even when it decodes to an allowed host
    "http://localhost%3a{A}@127.0.0.2:{B}/x.zip",
    "http://localhost:{A}\t@127.0.0.2:{B}/x.zip",  # control characters and whitespace
    "http://localhost:{A}/x.zip\r\nHost: 127.0.0.2",
    "http://localhost:{A}/x\x00.zip",
    " http://localhost:{A}/x.zip",
    "http://localhost:{A}/x.zip\\..\\y",
    "http://localhost:{A}:{B}/x.zip",  # two ports
    "http://127\u30020\u30020\u30022:{B}/x.zip",  # ideographic full stops: IDNA makes it 127.0.0.2
    "http://[::ffff:127.0.0.2]:{B}/x.zip",
    "http://127.2:{B}/x.zip",  # resolvers read numeric shorthands as IPv4
    "http://2130706434:{B}/x.zip",
    "http://0x7f.0.0.2:{B}/x.zip",
    "ftp://localhost:{A}/x.zip",
    "file:///etc/passwd",
    "//127.0.0.2:{B}/x.zip",  # scheme-relative
    "127.0.0.2:{B}/x.zip",
    "javascript:alert(1)",
]

ALLOWED = [
    "http://localhost:{A}/x.zip",
    "http://LOCALHOST:{A}/x.zip",  # case
    "HTTP://LocalHost:{A}/x.zip",
    "http://localhost.:{A}/x.zip",  # trailing dot
    "http://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54:{A}/x.zip",  # full-width: IDNA gives localhost
    "http://localhost:{A}/x.zip#@127.0.0.2:{B}",  # a fragment is never sent
]


@pytest.fixture(scope="module")
def servers():
    with (
        RecordingServer("127.0.0.1") as api,
        RecordingServer("127.0.0.1") as allowed,
        RecordingServer("127.0.0.2") as attacker,
    ):
        yield {"api": api, "allowed": allowed, "attacker": attacker}


@pytest.fixture
def env(emu, servers, monkeypatch, tmp_path):
    """A connection whose API host is the stand-in, IMS the emulator, one allow-listed download host."""
    for server in servers.values():
        server.clear()
        server.routes.clear()
    netrc = tmp_path / "netrc"
    netrc.write_text(
        "".join(
            f"machine {host} login netrc-user password netrc-secret\n"
            for host in ("localhost", "127.0.0.1", "127.0.0.2")
        ),
        encoding="utf-8",
    )
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))  # requests would derive Basic auth from it
    value = {
        "conn_type": "adobe_privacy_service",
        "host": servers["api"].base_url,
        "login": emu.client_id,
        "password": emu.client_secret,
        "extra": {
            "org_id": emu.org_id,
            "ims_url": emu.base_url,
            "download_hosts": [f"localhost:{servers['allowed'].port}"],
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_DOWNLOADS", json.dumps(value))
    yield {**servers, "hook": PrivacyServiceHook("downloads", retry_policy=ReadRetryPolicy(max_attempts=1))}
    _assert_no_leak(servers)


def _assert_no_leak(servers) -> None:
    assert servers["attacker"].requests == [], "a request reached the host off the allow-list"
    for request in servers["allowed"].requests:
        assert not {name.lower() for name in request.headers} & CREDENTIAL_HEADERS, request.headers
    for request in servers["api"].requests:
        auth = request.headers.get("Authorization", "")
        assert auth == "" or auth.startswith("Bearer "), "the API host got a credential that is not ours"


def _url(template: str, env) -> str:
    return template.format(A=env["allowed"].port, B=env["attacker"].port, C=env["api"].port)


def _download(hook: PrivacyServiceHook, job) -> bytes:
    with hook.stream_content(job) as chunks:
        return b"".join(chunks)


@pytest.mark.parametrize("template", REFUSED)
def test_a_refused_url_sends_no_request_anywhere(env, template):
    with pytest.raises(DownloadRefusedError) as err:
        _download(env["hook"], {"jobId": "j", "downloadUrl": _url(template, env)})

    assert env["allowed"].requests == [] and env["api"].requests == []
    assert "secret" not in str(err.value) and "127.0.0.2\\" not in str(err.value)


@pytest.mark.parametrize("spelling", ["downloadUrl", "downloadURL"])
@pytest.mark.parametrize("template", ALLOWED)
def test_an_allowed_host_is_normalised_and_fetched_without_credentials(env, template, spelling):
    assert _download(env["hook"], {"jobId": "j", spelling: _url(template, env)}) == ZIP_BYTES

    (request,) = env["allowed"].requests
    assert request.path == "/x.zip"
    assert request.headers["Host"].lower() == f"localhost:{env['allowed'].port}"


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.2:{B}/x.zip",
        "http://127.0.0.2:{B}\\@localhost:{A}/x.zip",
        "http://u:p@localhost:{A}/x.zip",
        "//127.0.0.2:{B}/x.zip",
        "http://127%2e0%2e0%2e2:{B}/x.zip",
        "ftp://localhost:{A}/x.zip",
    ],
)
def test_a_redirect_off_the_allow_list_is_refused_before_it_is_followed(env, location):
    env["allowed"].routes["/start"] = Answer(302, b"", {"Location": _url(location, env)})

    with pytest.raises(DownloadRefusedError):
        _download(env["hook"], {"jobId": "j", "downloadUrl": _url("http://localhost:{A}/start", env)})

    assert [r.path for r in env["allowed"].requests] == ["/start"]


def test_a_relative_redirect_on_the_allowed_host_is_followed_without_credentials(env):
    env["allowed"].routes["/start"] = Answer(307, b"", {"Location": "/x.zip"})

    assert (
        _download(env["hook"], {"jobId": "j", "downloadUrl": _url("http://localhost:{A}/start", env)})
        == ZIP_BYTES
    )
    assert [r.path for r in env["allowed"].requests] == ["/start", "/x.zip"]


def test_the_api_host_redirecting_to_a_blob_host_keeps_the_token_on_the_api_host(env):
    env["api"].routes[CONTENT.format("j")] = Answer(
        302, b"", {"Location": _url("http://localhost:{A}/x.zip", env)}
    )

    assert _download(env["hook"], "j") == ZIP_BYTES

    (api_request,) = env["api"].requests
    assert api_request.headers["Authorization"].startswith("Bearer ")
    assert [r.path for r in env["allowed"].requests] == ["/x.zip"]


def test_a_foreign_hop_back_to_the_api_host_is_fetched_without_the_token(env):
    env["allowed"].routes["/start"] = Answer(
        302, b"", {"Location": env["api"].base_url + CONTENT.format("x")}
    )

    assert (
        _download(env["hook"], {"jobId": "j", "downloadUrl": _url("http://localhost:{A}/start", env)})
        == ZIP_BYTES
    )

    (api_request,) = env["api"].requests
    assert not {name.lower() for name in api_request.headers} & CREDENTIAL_HEADERS


def test_the_api_host_redirecting_off_the_allow_list_is_refused(env):
    env["api"].routes[CONTENT.format("j")] = Answer(
        302, b"", {"Location": _url("http://127.0.0.2:{B}/x.zip", env)}
    )

    with pytest.raises(DownloadRefusedError):
        _download(env["hook"], "j")


def test_a_redirect_loop_ends_with_an_error(env):
    env["allowed"].routes["/loop"] = Answer(302, b"", {"Location": "/loop"})

    with pytest.raises(PrivacyTerminalError, match="redirects"):
        _download(env["hook"], {"jobId": "j", "downloadUrl": _url("http://localhost:{A}/loop", env)})
    assert len(env["allowed"].requests) == 6


def test_api_calls_send_our_bearer_token_even_when_netrc_names_the_api_host(env):
    env["api"].routes["/data/core/privacy/jobs/j"] = Answer(200, {"jobId": "j", "status": "processing"})

    assert env["hook"].get_job("j")["status"] == "processing"
    (request,) = env["api"].requests
    assert request.headers["Authorization"].startswith("Bearer ")


def test_an_untrusted_job_id_never_reaches_the_content_url(env):
    with pytest.raises(PrivacyServiceError):
        _download(env["hook"], "../../x")
    assert env["api"].requests == []
