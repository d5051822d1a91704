"""The API pool: one name from one setting, created where Airflow is set up, checked with a clear message."""

from __future__ import annotations

import pytest
from adobe_privacy import pools
from privacy_pipeline.errors import ConfigurationError


def test_the_pool_name_is_a_setting_with_a_default():
    assert pools.api_pool_name({}) == "adobe_privacy_api"
    assert pools.api_pool_name({pools.POOL_ENV: "  "}) == "adobe_privacy_api"
    assert pools.api_pool_name({pools.POOL_ENV: "adobe_api.eu-1"}) == "adobe_api.eu-1"


@pytest.mark.parametrize("name", ["adobe api", "pool;rm -rf /", "../x", "é"])
def test_a_pool_name_that_cannot_be_typed_safely_is_a_configuration_error(name):
    with pytest.raises(ConfigurationError, match=pools.POOL_ENV):
        pools.api_pool_name({pools.POOL_ENV: name})


def test_check_pool_fails_with_how_to_create_it_then_passes_once_ensured(airflow_db):
    name = "adobe_privacy_api_pool_test"
    with pytest.raises(ConfigurationError) as raised:
        pools.check_pool(name)
    message = str(raised.value)
    assert f"airflow pools set {name} 4" in message and pools.POOL_ENV in message

    assert pools.ensure_pool(name, slots=2) is True
    assert pools.ensure_pool(name, slots=9) is False  # an existing pool keeps the size its owner gave it
    assert pools.check_pool(name) is True

    from airflow.models.pool import Pool

    assert Pool.get_pool(name).slots == 2


def test_where_the_database_is_out_of_reach_the_check_says_so_instead_of_guessing(monkeypatch):
    """Airflow 3 task processes may not open the metadata DB: the check returns False, it does not raise."""
    import airflow.utils.session as session_module

    def blocked():
        raise RuntimeError("Direct database access via the ORM is not allowed in Airflow 3.0")

    monkeypatch.setattr(session_module, "create_session", blocked)
    assert pools.pool_exists("anything") is None
    assert pools.check_pool("anything") is False
