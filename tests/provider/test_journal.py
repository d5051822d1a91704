"""The async hook's journal GET: what an I/O Events journal reader needs, and nothing off its host.

A stand-in journal host answers as Adobe's Journaling API documents (pages, ``Link`` headers, 204
with ``retry-after`` at the end, 410 for an expired position); the attacker's host on 127.0.0.2
must never be reached. The last test reads the emulator's journal once it serves one.
"""

from __future__ import annotations

import json

import pytest
from adobe_privacy.exceptions import PrivacyAuthError, UrlRefusedError
from adobe_privacy.hooks import PrivacyServiceAsyncHook
from adobe_privacy.protocol import TOKEN_CACHE
from privacy_pipeline.errors import ConfigurationError

from tests.provider.helpers import calls
from tests.provider.recording_server import Answer, RecordingServer

PATH = "/events/organizations/ORG/integrations/client/privacy-events"
PAGE = {
    "events": [{"position": "p1", "event": {"id": "e1", "type": "com.adobe.platform.gdpr.jobcomplete"}}],
    "_page": {"last": "p1", "count": 1},
}


@pytest.fixture
def journal(stand_in):
    _, connect = stand_in
    with RecordingServer("127.0.0.1") as host, RecordingServer("127.0.0.2") as attacker:
        conn_id = connect(journal_url=f"{host.base_url}{PATH}")
        yield host, attacker, PrivacyServiceAsyncHook(conn_id), connect
        assert attacker.requests == []


async def test_a_page_comes_back_with_status_headers_and_body(journal):
    host, _, hook, _ = journal
    host.routes[PATH] = Answer(200, PAGE, {"Link": f'<{PATH}?since=p1>; rel="next"'})

    answer = await hook.journal_get()

    assert answer.status == 200 and json.loads(answer.body) == PAGE
    assert answer.headers.getall("link") == [f'<{PATH}?since=p1>; rel="next"']
    (request,) = host.requests
    sent = {name.lower(): value for name, value in request.headers.items()}
    assert sent["authorization"].startswith("Bearer ") and sent["x-api-key"] == "privacy-emulator"
    assert sent["x-ims-org-id"] and "x-gw-ims-org-id" not in sent


async def test_the_end_and_an_expired_position_are_returned_as_they_came(journal):
    host, _, hook, _ = journal
    host.routes[PATH] = Answer(204, b"", {"retry-after": "10", "Link": f'<{PATH}>; rel="next"'})
    host.routes["/events/organizations/ORG/integrations/client/old"] = Answer(410, b"")

    end = await hook.journal_get(f"{host.base_url}{PATH}?since=p1")
    gone = await hook.journal_get(f"{host.base_url}/events/organizations/ORG/integrations/client/old")

    assert (end.status, end.headers["Retry-After"], end.body) == (204, "10", b"")
    assert gone.status == 410
    assert [r.path for r in host.requests] == [
        f"{PATH}?since=p1",
        "/events/organizations/ORG/integrations/client/old",
    ]


async def test_a_401_renews_the_token_once(journal, emu):
    host, _, hook, _ = journal
    answers = iter(
        [Answer(401, {"error_code": "401013", "message": "Oauth token is not valid"}), Answer(200, PAGE)]
    )
    host.routes[PATH] = lambda r: next(answers)

    assert (await hook.journal_get()).status == 200
    first, second = host.requests
    assert first.headers["Authorization"] != second.headers["Authorization"]
    assert calls(emu, "POST /ims/token/v3") == {"200": 2}

    host.routes[PATH] = Answer(401, {"error_code": "401013", "message": "Oauth token is not valid"})
    with pytest.raises(PrivacyAuthError):
        await hook.journal_get()


@pytest.mark.parametrize(
    "template",
    [
        "http://127.0.0.2:{B}{PATH}",
        "http://u:p@127.0.0.1:{J}{PATH}",
        "http://127.0.0.1:{J}\\@127.0.0.2:{B}/x",
        "https://127.0.0.1:{J}{PATH}",
        "http://127.0.0.1:{B}{PATH}",
    ],
)
async def test_a_url_off_the_journal_host_is_refused_before_any_request(journal, template):
    host, attacker, hook, _ = journal

    with pytest.raises(UrlRefusedError):
        await hook.journal_get(template.format(B=attacker.port, J=host.port, PATH=PATH))
    assert host.requests == []


async def test_without_journal_url_it_is_a_configuration_error(journal):
    _, _, _, connect = journal

    with pytest.raises(ConfigurationError, match="journal_url"):
        await PrivacyServiceAsyncHook(connect()).journal_get()


async def test_the_emulators_default_journal(emu, connection_with):
    """Runs once the emulator serves a journal (built alongside); skipped only while it answers 404."""
    TOKEN_CACHE.clear()
    url = f"{emu.base_url}/events/organizations/{emu.org_id}/integrations/{emu.client_id}/privacy-events"
    hook = PrivacyServiceAsyncHook(connection_with(journal_url=url))

    answer = await hook.journal_get()
    if answer.status == 404:
        pytest.skip("the emulator has no journal yet")
    assert answer.status in (200, 204)
