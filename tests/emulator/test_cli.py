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
