"""The sans-I/O rules both hooks drive, tested in milliseconds with scripted answers.

``job_summary_walk`` (the summary both hooks and the hygiene wait report), ``authorized_exchange``
(the token rule) and the two drivers. A seeded check runs the same walk through ``drive`` and
``adrive`` and requires the same requests and the same result: the twins cannot drift apart.
"""

from __future__ import annotations

import random
import tomllib
from pathlib import Path

import adobe_privacy
import pytest
from adobe_privacy.exceptions import PrivacyAuthError, PrivacyTerminalError, PrivacyTransientError
from adobe_privacy.protocol import (
    Authorized,
    PageRequest,
    PrivacyConnectionSettings,
    TokenCache,
    TokenRequest,
    adrive,
    authorized_exchange,
    drive,
    job_summary_walk,
    list_params,
)

SETTINGS = PrivacyConnectionSettings(
    conn_id="c", api_base_url="https://platform.adobe.io", client_id="id", client_secret="s", org_id="O"
)
TOKEN_BODY = b'{"access_token": "tok-%d", "expires_in": 86399}'


def _query(regulation: str) -> dict:
    return list_params(regulation=regulation, status=None, from_date=None, to_date=None, page_size=3)


class ScriptedList:
    """Pages of ``jobs`` per regulation, ``size`` items each, 0-based; records every request."""

    def __init__(self, jobs: dict[str, list[tuple[str, str]]], refuse_sizes_above: int | None = None):
        self.jobs = jobs
        self.refuse_sizes_above = refuse_sizes_above
        self.requests: list[PageRequest] = []

    def __call__(self, request: PageRequest) -> dict:
        self.requests.append(request)
        size, page = request.params["size"], request.params.get("page", 0)
        if self.refuse_sizes_above and size > self.refuse_sizes_above:
            raise PrivacyTerminalError("400", status=400, error_code="X", detail=None, fields=("size",))
        items = self.jobs.get(request.params["regulation"], [])[page * size : (page + 1) * size]
        return {"jobDetails": [{"jobId": j, "status": s} for j, s in items]}

    async def async_call(self, request: PageRequest) -> dict:
        return self(request)


def test_the_walk_stops_once_every_wanted_job_was_seen():
    pages = ScriptedList({"gdpr": [(f"j{n}", "complete") for n in range(30)]})
    walk = job_summary_walk({"gdpr": ["j0", "j4"]}, list_query=_query, page_size=3, page_base=None)

    assert drive(walk, pages) == {"counts": {"complete": 2}, "open": 0, "error_job_ids": []}
    assert len(pages.requests) == 2  # j4 is on the second page; the other 8 pages are never asked


def test_missing_jobs_count_as_open_and_failed_ones_are_listed():
    pages = ScriptedList({"gdpr": [("a", "error"), ("b", "processing")], "ccpa": [("c", "cancelled")]})
    walk = job_summary_walk(
        {"gdpr": ["a", "b", "gone"], "ccpa": ["c"], "lgpd": []}, list_query=_query, page_size=3, page_base=0
    )

    assert drive(walk, pages) == {
        "counts": {"cancelled": 1, "error": 1, "missing": 1, "processing": 1},
        "open": 2,
        "error_job_ids": ["c", "a"],
    }
    assert {r.key for r in pages.requests} == {"gdpr", "ccpa"}  # no call for a regulation with no jobs


def test_the_walk_falls_back_to_100_when_the_size_is_refused():
    pages = ScriptedList({"gdpr": [(f"j{n}", "complete") for n in range(150)]}, refuse_sizes_above=100)
    walk = job_summary_walk({"gdpr": ["j149"]}, list_query=_query, page_size=1000, page_base=None)

    assert drive(walk, pages)["counts"] == {"complete": 1}
    assert [r.params["size"] for r in pages.requests] == [1000, 100, 100]


def test_other_errors_leave_the_walk():
    def fail(request):
        raise PrivacyTerminalError("403", status=403, error_code=None, detail=None)

    with pytest.raises(PrivacyTerminalError):
        drive(job_summary_walk({"gdpr": ["a"]}, list_query=_query, page_size=3, page_base=None), fail)


@pytest.mark.parametrize("seed", range(20))
async def test_the_sync_and_async_drivers_walk_alike(seed):
    rng = random.Random(seed)
    statuses = ["complete", "error", "processing", "submitted", "cancelled", "Weird"]
    jobs = {
        reg: [(f"{reg}-{n}", rng.choice(statuses)) for n in range(rng.randint(0, 40))]
        for reg in ("gdpr", "ccpa", "lgpd")
    }
    wanted = {
        reg: rng.sample([j for j, _ in items], k=min(len(items), rng.randint(0, 5))) + ["absent"]
        for reg, items in jobs.items()
    }
    size = rng.randint(1, 7)
    sync_pages, async_pages = ScriptedList(jobs), ScriptedList(jobs)

    def walk():
        return job_summary_walk(wanted, list_query=_query, page_size=size, page_base=rng.choice([None, 0]))

    rng_state = rng.getstate()
    result = drive(walk(), sync_pages)
    rng.setstate(rng_state)
    assert await adrive(walk(), async_pages.async_call) == result
    assert async_pages.requests == sync_pages.requests


class Exchange:
    """Drives authorized_exchange with scripted IMS and API answers."""

    def __init__(self, api_answers, ims_answers=None):
        self.cache = TokenCache()
        self.api_answers, self.ims_answers = iter(api_answers), iter(ims_answers or [])
        self.steps: list[str] = []
        self.tokens_issued = 0

    def perform(self, step):
        if isinstance(step, TokenRequest):
            self.steps.append("ims")
            answer = next(self.ims_answers, None)
            if isinstance(answer, Exception):
                raise answer
            self.tokens_issued += 1
            return TOKEN_BODY % self.tokens_issued
        assert isinstance(step, Authorized)
        self.steps.append(f"api:{step.token}")
        answer = next(self.api_answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def run(self):
        return drive(authorized_exchange(SETTINGS, clock=lambda: 1000.0, cache=self.cache), self.perform)


def _401():
    return PrivacyAuthError("401", status=401, error_code="401013", detail=None)


def test_a_cached_token_is_reused_and_a_401_renews_it_once():
    exchange = Exchange(["first", _401(), "second"])

    assert exchange.run() == "first"
    assert exchange.run() == "second"
    assert exchange.steps == ["ims", "api:tok-1", "api:tok-1", "ims", "api:tok-2"]


def test_a_second_401_is_raised():
    exchange = Exchange([_401(), _401()])

    with pytest.raises(PrivacyAuthError):
        exchange.run()
    assert exchange.steps == ["ims", "api:tok-1", "ims", "api:tok-2"]


def test_an_ims_outage_means_the_api_request_was_not_sent():
    exchange = Exchange([], ims_answers=[PrivacyTransientError("IMS 503", status=503)])

    with pytest.raises(PrivacyTransientError) as err:
        exchange.run()
    assert err.value.request_sent is False and exchange.steps == ["ims"]


def test_an_ims_refusal_is_an_auth_error():
    refusal = PrivacyTerminalError("400", status=400, error_code="invalid_client", detail=None)
    exchange = Exchange([], ims_answers=[refusal])

    with pytest.raises(PrivacyAuthError):
        exchange.run()


def test_the_version_is_pyprojects():
    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text("utf-8"))

    assert adobe_privacy.__version__ == pyproject["project"]["version"]
