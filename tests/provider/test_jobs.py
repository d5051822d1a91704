"""Jobs, consent and hygiene through the hook: shapes normalised, pages walked once each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from adobe_privacy.exceptions import PrivacyServiceError, PrivacyTerminalError
from adobe_privacy.hooks import PrivacyServiceHook
from adobe_privacy.protocol import CreatedJob

from tests.provider.helpers import JOBS_ROUTE, REGULATION, calls, make_payload


def test_create_jobs_returns_one_job_per_user_and_action(emu, hook):
    created = hook.create_jobs(make_payload(emu.org_id, ["a", "b"], actions=("access", "delete")))

    assert sorted((job.user_key, job.action) for job in created) == [
        ("a", "access"),
        ("a", "delete"),
        ("b", "access"),
        ("b", "delete"),
    ]
    assert all(isinstance(job, CreatedJob) and job.job_id for job in created)
    assert len({job.job_id for job in created}) == 4


def test_get_job_is_normalised_and_complete_access_jobs_have_a_download_url(emu, hook):
    created = hook.create_jobs(make_payload(emu.org_id, ["a"], actions=("access", "delete")))
    emu.advance_clock(3600)

    jobs = {job.action: hook.get_job(job.job_id) for job in created}

    for action, job in jobs.items():
        assert job["status"] in ("complete", "error"), action
        assert "userIDs" not in job and "downloadURL" not in job
        assert job["userIds"] and job["userKey"] == "a"
    if jobs["access"]["status"] == "complete":
        assert jobs["access"]["downloadUrl"].endswith(f"/jobs/{jobs['access']['jobId']}/content")
    assert "downloadUrl" not in jobs["delete"]


def test_unknown_job_is_a_terminal_error(emu, hook):
    with pytest.raises(PrivacyTerminalError) as err:
        hook.get_job("00000000-0000-0000-0000-000000000000")
    assert err.value.status in (400, 404)


def _create_many(hook: PrivacyServiceHook, org_id: str, subjects: int) -> set[str]:
    ids: set[str] = set()
    for start in range(0, subjects, 1000):
        keys = [f"k{n}" for n in range(start, min(start + 1000, subjects))]
        ids |= {
            job.job_id for job in hook.create_jobs(make_payload(org_id, keys, actions=("access", "delete")))
        }
    return ids


@pytest.mark.slow
@pytest.mark.parametrize("page_base", [0, 1])
def test_pagination_over_more_than_three_pages_of_1000(emu, hook, page_base):
    emu.configure(page_base=page_base)
    created = _create_many(hook, emu.org_id, 1750)  # 3500 jobs
    today = datetime.now(UTC).date()

    listed = [
        job["jobId"] for job in hook.iter_jobs(REGULATION, from_date=today - timedelta(days=1), to_date=today)
    ]

    assert len(listed) == len(set(listed)) == 3500
    assert set(listed) == created
    # 4 pages of 1000; a 1-based server costs exactly one repeated page.
    assert calls(emu, f"GET {JOBS_ROUTE}") == {"200": 4 + page_base}


def test_small_pages_and_status_filter(emu, hook):
    hook.create_jobs(make_payload(emu.org_id, [f"k{n}" for n in range(7)]))

    assert len(list(hook.iter_jobs(REGULATION, page_size=3))) == 7
    assert calls(emu, f"GET {JOBS_ROUTE}") == {"200": 3}
    emu.advance_clock(3600)
    finished = list(hook.iter_jobs(REGULATION, status="complete")) + list(
        hook.iter_jobs(REGULATION, status="error")
    )
    assert len(finished) == 7


def test_list_window_needs_both_dates(emu, hook):
    with pytest.raises(ValueError, match="together"):
        list(hook.iter_jobs(REGULATION, from_date="2026-01-01"))


def test_summarize_jobs_counts_by_status_and_reports_errors(emu, hook):
    emu.configure(error_rate=1.0)
    created = hook.create_jobs(make_payload(emu.org_id, ["a", "b"]))
    ids = [job.job_id for job in created]
    today = datetime.now(UTC).date().isoformat()

    before = hook.summarize_jobs({REGULATION: ids}, from_date=today, to_date=today)
    emu.advance_clock(3600)
    after = hook.summarize_jobs({REGULATION: ids}, from_date=today, to_date=today)

    assert before["open"] == 2 and before["error_job_ids"] == []
    assert after == {"counts": {"error": 2}, "open": 0, "error_job_ids": sorted(ids)}


def test_consent_is_accepted_once(emu, hook):
    hook.submit_consent(
        {"optOutOfSale": True, "entities": [{"nameSpace": "email", "values": ["x@example.test"]}]}
    )

    assert emu.stats()["consent_records"] == 1
    assert calls(emu, "POST /data/core/privacy/consent") == {"202": 1}


def test_hygiene_jobs_create_get_and_list(emu, hook):
    payload = make_payload(emu.org_id, ["h1", "h2"], actions=("delete",))
    created = hook.create_hygiene_jobs(payload)

    assert [job.action for job in created] == ["delete", "delete"]
    detail = hook.get_hygiene_job(created[0].job_id)
    assert detail["jobId"] == created[0].job_id and "userIds" in detail
    listed = {job["jobId"] for job in hook.iter_hygiene_jobs(regulation=REGULATION)}
    assert {job.job_id for job in created} <= listed
    assert emu.stats()["hygiene_jobs_total"] == 2


def test_hygiene_without_a_sandbox_name_uses_prod(emu, connection_with):
    hook = PrivacyServiceHook(connection_with(sandbox_name=""))

    assert hook.settings.api_headers("t", hygiene=True)["x-sandbox-name"] == "prod"
    assert "x-sandbox-name" not in hook.settings.api_headers("t")
    created = hook.create_hygiene_jobs(make_payload(emu.org_id, ["h1"], actions=("delete",)))
    assert hook.get_hygiene_job(created[0].job_id)["jobId"] == created[0].job_id


def test_ids_outside_adobes_alphabet_never_reach_a_url(emu, hook):
    for job_id in ("../x", "/etc/passwd", "..", "a/b", "a%2Fb", "", "a" * 129, "-x"):
        with pytest.raises(PrivacyServiceError, match="alphabet|not 1-128"):
            hook.get_job(job_id)
    assert not [route for route in emu.stats()["calls"] if route.startswith("GET /data/core/privacy/jobs/")]
