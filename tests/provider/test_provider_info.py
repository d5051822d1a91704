"""Provider registration (ProvidersManager sees our connection type) and connection validation."""

from __future__ import annotations

import json

import pytest
from adobe_privacy.exceptions import PrivacyServiceError
from adobe_privacy.get_provider_info import get_provider_info
from adobe_privacy.hooks import PrivacyServiceHook
from adobe_privacy.protocol import DEFAULT_IMS_URL, DEFAULT_SCOPES, PrivacyConnectionSettings
from airflow.sdk import Connection


def test_providers_manager_registers_the_connection_type_and_its_form():
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    manager = ProvidersManager()  # the API server's view: connection form metadata
    hook = ProvidersManagerTaskRuntime().hooks["adobe_privacy_service"]  # the workers' view
    behaviour = manager.field_behaviours["adobe_privacy_service"]

    assert manager.providers["airflow-adobe-privacy"].data["package-name"] == "airflow-adobe-privacy"
    assert (hook.hook_class_name, hook.connection_id_attribute_name) == (
        "adobe_privacy.hooks.PrivacyServiceHook",
        "adobe_privacy_conn_id",
    )
    assert hook.connection_testable
    assert behaviour["hidden_fields"] == ["schema", "port"]
    assert behaviour["relabeling"]["login"] == "Client ID"
    assert json.loads(behaviour["placeholders"]["extra"])["org_id"].endswith("@AdobeOrg")
    assert "extra__adobe_privacy_service__download_hosts" in manager.connection_form_widgets


def test_hook_ui_behaviour_matches_the_declared_one():
    declared = get_provider_info()["connection-types"][0]["ui-field-behaviour"]
    assert PrivacyServiceHook.get_ui_field_behaviour() == {
        "hidden_fields": declared["hidden-fields"],
        "relabeling": declared["relabeling"],
        "placeholders": declared["placeholders"],
    }


def _connection(host: str = "https://platform.adobe.io", **extra) -> Connection:
    return Connection(
        conn_id="c",
        conn_type="adobe_privacy_service",
        host=host,
        login="client",
        password="secret",
        extra=json.dumps({"org_id": "ORG@AdobeOrg", **extra}),
    )


def test_settings_defaults_and_list_fields():
    settings = PrivacyConnectionSettings.from_connection(
        _connection(download_hosts="files.example.com, blob.example.com:8443")
    )

    assert (settings.ims_url, settings.scopes) == (DEFAULT_IMS_URL, DEFAULT_SCOPES)
    assert settings.privacy_url("/jobs") == "https://platform.adobe.io/data/core/privacy/jobs"
    assert settings.hygiene_url("/jobs") == "https://platform.adobe.io/data/core/hygiene/jobs"
    assert settings.download_hosts == ("files.example.com", "blob.example.com:8443")
    assert "secret" not in repr(settings)


@pytest.mark.parametrize(
    "host, extra",
    [
        ("http://platform.adobe.io", {}),
        ("https://platform.adobe.io", {"ims_url": "http://ims.example.com"}),
    ],
)
def test_plain_http_is_refused_off_loopback(host, extra):
    with pytest.raises(PrivacyServiceError, match="https"):
        PrivacyConnectionSettings.from_connection(_connection(host, **extra))


@pytest.mark.parametrize("host", ["http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:9"])
def test_plain_http_is_allowed_on_loopback(host):
    assert PrivacyConnectionSettings.from_connection(_connection(host)).api_base_url == host


def test_missing_org_id_is_a_clear_error():
    connection = Connection(
        conn_id="c", conn_type="adobe_privacy_service", host="https://x", login="a", password="b"
    )
    with pytest.raises(PrivacyServiceError, match="org_id"):
        PrivacyConnectionSettings.from_connection(connection)


def test_provider_info_lists_every_component_from_one_version_and_one_set_of_defaults():
    import importlib

    import adobe_privacy
    from adobe_privacy import get_provider_info as info_module
    from adobe_privacy import protocol

    info = get_provider_info()
    assert info["versions"] == [adobe_privacy.__version__]
    for kind in ("hooks", "operators", "sensors", "triggers"):
        modules = [m for item in info[kind] for m in item["python-modules"]]
        assert modules, kind
        for module in modules:
            importlib.import_module(module)
    for path in info["notifications"]:
        module, _, name = path.rpartition(".")
        assert hasattr(importlib.import_module(module), name)
    assert (info_module.CONNECTION_TYPE, info_module.DEFAULT_IMS_URL, info_module.DEFAULT_SCOPES) == \
        (protocol.CONN_TYPE, protocol.DEFAULT_IMS_URL, protocol.DEFAULT_SCOPES)
