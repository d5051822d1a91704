"""The journal watcher's interval: set from the environment when the recorder DAG is parsed."""

from __future__ import annotations

import pytest
from adobe_privacy.operators.events import DEFAULT_WATCH_INTERVAL, WATCH_INTERVAL_ENV, journal_watch_interval


def test_the_default_is_five_minutes():
    assert journal_watch_interval({}) == DEFAULT_WATCH_INTERVAL == 300.0
    assert journal_watch_interval({WATCH_INTERVAL_ENV: "  "}) == 300.0


def test_a_set_interval_is_used():
    assert journal_watch_interval({WATCH_INTERVAL_ENV: "3"}) == 3.0
    assert journal_watch_interval({WATCH_INTERVAL_ENV: "1.5"}) == 1.5


@pytest.mark.parametrize("raw", ["0", "-5", "five", "nan", "inf", "86401"])
def test_a_bad_interval_fails_the_parse_naming_the_variable(raw):
    with pytest.raises(ValueError, match=WATCH_INTERVAL_ENV):
        journal_watch_interval({WATCH_INTERVAL_ENV: raw})


def test_the_recorder_dag_watches_at_the_environments_interval(monkeypatch):
    import importlib.util

    from tests.conftest import REPO

    monkeypatch.setenv(WATCH_INTERVAL_ENV, "7")
    spec = importlib.util.spec_from_file_location("recorder_dag_under_test", REPO / "dags" / "privacy_events_recorder.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (watcher,) = module.JOURNAL_WATCHED.watchers
    assert watcher.trigger.interval == 7.0
