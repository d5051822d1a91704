"""Provider metadata, read by Airflow's ProvidersManager through the ``apache_airflow_provider`` entry point.

Kept import-free (no hook import) so the API server can render the connection form cheaply. The
connection form is declared here (``ui-field-behaviour`` and ``conn-fields``), which is what Airflow
3.2+ reads first; the hook's ``get_ui_field_behaviour`` returns the same data for older callers.
"""

from __future__ import annotations

import json
from typing import Any

from adobe_privacy import __version__  # the package's __init__ imports nothing

PACKAGE_NAME = "airflow-adobe-privacy"  # must equal the distribution name in pyproject.toml
#: The connection type and its defaults: defined here, import-free; `protocol.settings` imports them.
CONNECTION_TYPE = "adobe_privacy_service"
DEFAULT_IMS_URL = "https://ims-na1.adobelogin.com"
DEFAULT_SCOPES = "openid,AdobeID,read_organizations,additional_info.projectedProductContext"
DEFAULT_SANDBOX_NAME = "prod"  # every Experience Platform organisation has a production sandbox of that name
HOOK_CLASS_NAME = "adobe_privacy.hooks.PrivacyServiceHook"
#: `adobe_privacy.links.EXTRA_LINK_CLASSES`, spelled out so this module imports nothing (a test keeps them equal).
EXTRA_LINK_CLASSES = tuple(f"adobe_privacy.links.{name}" for name in (
    "RunFolderLink", "RunReportLink", "RejectedRowsLink", "DeadlinesChartLink", "PrivacyServiceJobsLink"))

EXTRA_EXAMPLE = {
    "org_id": "XXXXXXXXXXXXXXXXXXXXXXXX@AdobeOrg",
    "ims_url": DEFAULT_IMS_URL,
    "scopes": DEFAULT_SCOPES,
    "sandbox_name": DEFAULT_SANDBOX_NAME,
    "download_hosts": [],
}

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "port"],
    "relabeling": {"host": "API base URL", "login": "Client ID", "password": "Client secret"},
    "placeholders": {
        "sandbox_name": DEFAULT_SANDBOX_NAME,
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
    "ims_url": _text_field("IMS URL", "OAuth server-to-server token host.", DEFAULT_IMS_URL),
    "scopes": _text_field("Scopes", "Comma-separated OAuth scopes of the credential.", DEFAULT_SCOPES),
    "sandbox_name": _text_field("Sandbox name", "x-sandbox-name for the Data Hygiene API.", DEFAULT_SANDBOX_NAME),
    "download_hosts": _text_field(
        "Download hosts",
        "Comma-separated host[:port] list from which a legacy download URL may be fetched, "
        "always without credentials. Empty: only the API host.",
    ),
    "page_size": _text_field(
        "List page size",
        "Jobs per page of a list call, 1 to 1000 (default 1000); lower it if the API refuses large pages.",
    ),
    "journal_url": _text_field(
        "I/O Events journal URL",
        "The journal of the Adobe I/O Events registration for job-finished events (hints; the list stays "
        "the guarantee). Empty: no journal.",
    ),
    "privacy_ui_url": _text_field(
        "Privacy Service UI URL",
        "https URL of Adobe's Privacy Service UI for the wait task's link. Empty: Adobe's default.",
    ),
}


INTEGRATION = "Adobe Privacy Service"
OPERATOR_MODULES = [f"adobe_privacy.operators.{step}" for step in
                    ("intake", "approval", "submit", "archive", "report", "reconcile", "opt_out", "hygiene",
                     "workorders", "events", "metrics")]


def _modules(*names: str) -> list[dict[str, Any]]:
    return [{"integration-name": INTEGRATION, "python-modules": list(names)}]


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": PACKAGE_NAME,
        "name": "Adobe Experience Platform Privacy Service",
        "description": "Hooks, operators, sensors, trigger and notifier for Adobe Privacy Service and the "
                       "Data Hygiene API.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://experienceleague.adobe.com/en/docs/experience-platform/privacy/api/overview",
                "tags": ["service"],
            }
        ],
        "hooks": _modules("adobe_privacy.hooks"),
        "operators": _modules(*OPERATOR_MODULES),
        "sensors": _modules("adobe_privacy.sensors"),
        "triggers": _modules("adobe_privacy.triggers", "adobe_privacy.event_triggers"),
        "notifications": ["adobe_privacy.notifiers.PrivacyAlertLogNotifier"],
        # By class path, import-free: the UI restores a serialized DAG's buttons from these.
        "extra-links": list(EXTRA_LINK_CLASSES),
        "connection-types": [
            {
                "hook-class-name": HOOK_CLASS_NAME,
                "hook-name": INTEGRATION,
                "connection-type": CONNECTION_TYPE,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
                "conn-fields": CONN_FIELDS,
            }
        ],
    }
