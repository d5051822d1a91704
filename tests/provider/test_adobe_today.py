"""The client is right whichever way Adobe resolves its own ambiguities (issue: Adobe as it is today).

- list ``size``: 1000 per the guide, 100 per the OpenAPI file. A 400 naming ``size`` makes the hook
  fall back to 100 and keep it for its life; the connection extra ``page_size`` sets it up front.
- ``downloadUrl`` (content page, real responses) and ``downloadURL`` (the jobs guide) are both read.
- The gateway's 429 body ``{"error_code":"429050","message":"Too many requests"}`` is back-pressure.

Each against a stand-in API host answering with the bodies Adobe documents, and against the emulator
where it has the switch.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from adobe_privacy.exceptions import PrivacyBackPressureError
from adobe_privacy.hooks import PrivacyServiceAsyncHook, PrivacyServiceHook
from adobe_privacy.protocol import ReadRetryPolicy, classify_error

from tests.provider.helpers import JOBS_ROUTE, REGULATION, calls, make_payload
from tests.provider.recording_server import ZIP_BYTES, Answer

GATEWAY_429 = {"error_code": "429050", "message": "Too many requests"}
SIZE_400_AEP = {
    "type": "http://ns.adobe.com/aep/errors/PRVCY-1000-400",
    "title": "Invalid request",
    "status": 400,
    "error_code": "PRVCY-1000-400",
    "detail": "The request has invalid parameters.",
    "errors": [{"field": "size", "message": "must be between 1 and 100"}],
}
SIZE_400_PLAIN = {
    "error_code": "PRVCY-1000-400",
    "message": "Invalid value for query parameter size (max 100)",
}


def _query(path: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(path).query).items()}


def oas_list(total: int, refusal: dict):
    """A list endpoint that follows Adobe's OpenAPI file: size at most 100, 0-based pages."""

    def answer(request) -> Answer:
        query = _query(request.path)
        size, page = int(query.get("size", 25)), int(query.get("page", 0))
        if size > 100:
            return Answer(400, refusal)
        ids = range(page * size, min(total, (page + 1) * size))
        return Answer(
            200,
            {"jobDetails": [{"jobId": f"job-{n}", "status": "complete"} for n in ids], "totalRecords": total},
        )

    return answer


def _sizes(api) -> list[int]:
    return [int(_query(r.path)["size"]) for r in api.requests if r.path.startswith(JOBS_ROUTE)]


@pytest.mark.parametrize("refusal", [SIZE_400_AEP, SIZE_400_PLAIN], ids=["errors-field", "message"])
def test_a_400_naming_size_falls_back_to_100_for_the_hooks_life(stand_in, refusal):
    api, connect = stand_in
    api.routes[JOBS_ROUTE] = oas_list(250, refusal)
    hook = PrivacyServiceHook(connect(), retry_policy=ReadRetryPolicy(max_attempts=1))

    assert len(list(hook.iter_jobs(REGULATION))) == 250
    assert _sizes(api) == [1000, 100, 100, 100]

    api.clear()
    summary = hook.summarize_jobs({REGULATION: ["job-0", "job-249"]}, from_date=None, to_date=None)
    assert summary["counts"] == {"complete": 2}
    assert set(_sizes(api)) == {100}  # remembered: no second refusal


def test_the_connection_extra_sets_the_page_size(stand_in):
    api, connect = stand_in
    api.routes[JOBS_ROUTE] = oas_list(120, SIZE_400_AEP)
    hook = PrivacyServiceHook(connect(page_size=100))

    assert len(list(hook.iter_jobs(REGULATION))) == 120
    assert _sizes(api) == [100, 100]


def test_another_400_is_not_taken_for_a_page_size_refusal(stand_in):
    api, connect = stand_in
    api.routes[JOBS_ROUTE] = Answer(400, {"error_code": "PRVCY-1000-400", "message": "regulation is invalid"})
    hook = PrivacyServiceHook(connect())

    with pytest.raises(Exception, match="400"):
        list(hook.iter_jobs(REGULATION))
    assert _sizes(api) == [1000]


async def test_the_async_hook_falls_back_and_remembers_too(stand_in):
    api, connect = stand_in
    api.routes[JOBS_ROUTE] = oas_list(150, SIZE_400_AEP)
    hook = PrivacyServiceAsyncHook(connect(), retry_policy=ReadRetryPolicy(max_attempts=1))

    summary = await hook.summarize_jobs({REGULATION: ["job-0", "job-149"]}, from_date=None, to_date=None)
    jobs = [job async for job in hook.iter_jobs(REGULATION)]

    assert summary == {"counts": {"complete": 2}, "open": 0, "error_job_ids": []}
    assert len(jobs) == 150
    assert _sizes(api) == [1000, 100, 100, 100, 100]


def test_the_emulator_with_the_oas_maximum_is_walked_completely(emu, hook):
    emu.configure(max_page_size=100)
    created = hook.create_jobs(make_payload(emu.org_id, [f"k{n}" for n in range(130)]))

    listed = {job["jobId"] for job in hook.iter_jobs(REGULATION)}

    assert {job.job_id for job in created} <= listed
    assert calls(emu, f"GET {JOBS_ROUTE}") == {"400": 1, "200": 2}


@pytest.mark.parametrize("spelling", ["downloadUrl", "downloadURL"])
def test_either_download_spelling_is_read(stand_in, spelling):
    api, connect = stand_in
    content = f"{api.base_url}/data/core/privacy/jobs/j1/content"
    api.routes["/data/core/privacy/jobs/j1"] = Answer(
        200, {"jobId": "j1", "status": "complete", spelling: content}
    )
    api.routes["/data/core/privacy/jobs/j1/content"] = Answer(200, ZIP_BYTES)
    hook = PrivacyServiceHook(connect())

    job = hook.get_job("j1")
    with hook.stream_content(job) as chunks:
        assert b"".join(chunks) == ZIP_BYTES
    assert job["downloadUrl"] == content and "downloadURL" not in job


def test_the_gateway_429_body_is_rate_limiting():
    error = classify_error(
        429, b'{"error_code":"429050","message":"Too many requests"}', {}, operation="GET /jobs"
    )

    assert isinstance(error, PrivacyBackPressureError)
    assert (error.error_code, error.daily_limit) == ("429050", False)


def test_a_gateway_429_is_retried_for_reads_and_refused_for_writes(stand_in, sleeps):
    api, connect = stand_in
    answers = iter([Answer(429, GATEWAY_429, {"Retry-After": "3"}), Answer(200, {"jobDetails": []})])
    api.routes[JOBS_ROUTE] = lambda r: next(answers) if r.method == "GET" else Answer(429, GATEWAY_429)
    hook = PrivacyServiceHook(connect(), sleep=sleeps)

    assert list(hook.iter_jobs(REGULATION)) == []
    assert sleeps.waits and sleeps.waits[0] >= 3
    with pytest.raises(PrivacyBackPressureError) as err:
        hook.create_jobs(make_payload("ORG@AdobeOrg", ["a"]))
    assert err.value.error_code == "429050"
    assert [r.method for r in api.requests if r.path.startswith(JOBS_ROUTE)] == ["GET", "GET", "POST"]
