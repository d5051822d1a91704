"""The command line's layering of settings: defaults < --realistic < --config < explicit flags."""

from __future__ import annotations

import json

import pytest
from privacy_emulator.__main__ import build_parser, settings_from_args
from privacy_emulator.settings import DAY


def settings_for(*argv: str):
    return settings_from_args(build_parser().parse_args(list(argv)))


def test_defaults_are_the_documented_ones():
    settings = settings_for()
    assert (settings.client_id, settings.effective_api_key) == ("privacy-emulator", "privacy-emulator")
    assert settings.token_ttl_seconds == 86399
    assert (settings.default_page_size, settings.max_page_size, settings.page_base) == (100, 1000, 0)
    assert settings.daily_job_cap == 20000
    assert not settings.legacy_download and not settings.accept_legacy_regulations


def test_layering(tmp_path):
    config = tmp_path / "settings.json"
    config.write_text(json.dumps({"complete_after_seconds": 20 * DAY, "seed": 3, "legacy_download": True}))
    settings = settings_for(
        "--realistic", "--config", str(config), "--seed", "9", "--accept-legacy-regulations"
    )
    assert settings.processing_after_seconds == DAY  # from --realistic
    assert settings.complete_after_seconds == 20 * DAY  # the file wins over the preset
    assert settings.seed == 9  # the flag wins over the file
    assert settings.legacy_download and settings.accept_legacy_regulations


def test_inconsistent_settings_are_refused():
    with pytest.raises(ValueError, match="complete_after_seconds"):
        settings_for("--processing-after-seconds", "10", "--complete-after-seconds", "5")


def test_round_two_flags():
    defaults = settings_for()
    assert defaults.download_url_key == "downloadUrl" and not defaults.adobe_known_bugs
    assert defaults.gateway_requests_per_minute == 0
    assert (
        defaults.workorder_max_identities,
        defaults.workorder_daily_identities,
        defaults.workorder_monthly_identities,
    ) == (100_000, 1_000_000, 2_000_000)
    settings = settings_for(
        "--download-url-key", "downloadURL",
        "--adobe-known-bugs",
        "--max-page-size", "100",
        "--gateway-requests-per-minute", "30",
        "--workorder-complete-after-seconds", "60",
        "--workorder-failure-rate", "0.5",
        "--workorder-max-identities", "10",
        "--workorder-daily-identities", "20",
        "--workorder-monthly-identities", "40",
    )  # fmt: skip
    assert settings.download_url_key == "downloadURL" and settings.adobe_known_bugs
    assert (settings.max_page_size, settings.gateway_requests_per_minute) == (100, 30)
    assert (settings.workorder_complete_after_seconds, settings.workorder_failure_rate) == (60, 0.5)
    assert (
        settings.workorder_max_identities,
        settings.workorder_daily_identities,
        settings.workorder_monthly_identities,
    ) == (10, 20, 40)
    assert settings_for("--realistic").workorder_complete_after_seconds == 15 * DAY
    with pytest.raises(ValueError, match="download_url_key"):
        settings_for("--download-url-key", "download_url")
