"""Provider metadata, read by Airflow's ProvidersManager through the ``apache_airflow_provider`` entry point.

Kept import-free (no hook import) so the API server can render the connection form cheaply. The
connection form is declared here (``ui-field-behaviour`` and ``conn-fields``), which is what Airflow
3.2+ reads first; the hook's ``get_ui_field_behaviour`` returns the same data for older callers.
"""

from __future__ import annotations

import json
from typing import Any

PACKAGE_NAME = "airflow-adobe-privacy"  # must equal the distribution name in pyproject.toml
CONNECTION_TYPE = "adobe_privacy_service"
HOOK_CLASS_NAME = "adobe_privacy.hooks.PrivacyServiceHook"

EXTRA_EXAMPLE = {
    "org_id": "XXXXXXXXXXXXXXXXXXXXXXXX@AdobeOrg",
    "ims_url": "https://ims-na1.adobelogin.com",
    "scopes": "openid,AdobeID,read_organizations,additional_info.projectedProductContext",
    "sandbox_name": "prod",
    "download_hosts": [],
}

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "port"],
    "relabeling": {"host": "API base URL", "login": "Client ID", "password": "Client secret"},
    "placeholders": {
        "host": "https://platform.adobe.io",
        "login": "Developer Console OAuth Server-to-Server client id (also sent as x-api-key)",
        "password": "client secret",
        "extra": json.dumps(EXTRA_EXAMPLE, indent=2),
    },
}


def _text_field(label: str, description: str, default: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": ["string", "null"]}
    if default is not None:
        schema["default"] = default
    return {"label": label, "description": description, "schema": schema}


CONN_FIELDS: dict[str, Any] = {
    "org_id": _text_field("IMS org id", "Sent as x-gw-ims-org-id, e.g. XXXX@AdobeOrg."),
    "ims_url": _text_field("IMS URL", "OAuth server-to-server token host.", "https://ims-na1.adobelogin.com"),
    "scopes": _text_field(
        "Scopes",
        "Comma-separated OAuth scopes of the credential.",
        "openid,AdobeID,read_organizations,additional_info.projectedProductContext",
    ),
    "sandbox_name": _text_field("Sandbox name", "x-sandbox-name for the Data Hygiene API."),
    "download_hosts": _text_field(
        "Download hosts",
        "Comma-separated host[:port] list from which a legacy download URL may be fetched, "
        "always without credentials. Empty: only the API host.",
    ),
}


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": PACKAGE_NAME,
        "name": "Adobe Experience Platform Privacy Service",
        "description": "Hooks, trigger and sensor for Adobe Privacy Service and the Data Hygiene API.",
        "versions": ["0.1.0"],
        "integrations": [
            {
                "integration-name": "Adobe Privacy Service",
                "external-doc-url": "https://experienceleague.adobe.com/en/docs/experience-platform/privacy/api/overview",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": "Adobe Privacy Service", "python-modules": ["adobe_privacy.hooks"]}],
        "triggers": [
            {"integration-name": "Adobe Privacy Service", "python-modules": ["adobe_privacy.triggers"]}
        ],
        "sensors": [
            {"integration-name": "Adobe Privacy Service", "python-modules": ["adobe_privacy.sensors"]}
        ],
        "connection-types": [
            {
                "hook-class-name": HOOK_CLASS_NAME,
                "hook-name": "Adobe Privacy Service",
                "connection-type": CONNECTION_TYPE,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
                "conn-fields": CONN_FIELDS,
            }
        ],
    }
