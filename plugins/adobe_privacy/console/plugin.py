"""The Airflow plugin that mounts the request console on the api-server and lists it in the navigation.

Registered through the `airflow.plugins` entry point (pyproject.toml) and found by the plugins-folder
scan as well; Airflow keeps the first it loads (one name, one plugin).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from adobe_privacy.console.app import URL_PREFIX, create_app


class PrivacyConsolePlugin(AirflowPlugin):
    name = "adobe_privacy_console"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Privacy requests"}]
    external_views = [{
        "name": "Privacy requests",
        "href": f"{URL_PREFIX}/",
        "url_route": "privacy-requests",
        "destination": "nav",
        "nav_top_level": True,
    }]
