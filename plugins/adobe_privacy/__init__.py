"""Apache Airflow integration for Adobe Experience Platform Privacy Service.

Shaped like a first-class provider (distribution ``airflow-adobe-privacy``, registered through the
``apache_airflow_provider`` entry point): hooks, triggers, sensors and operators for the Privacy
Service and Data Hygiene APIs, authenticated with an IMS OAuth server-to-server token.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION_NAME = "airflow-adobe-privacy"

try:
    # pyproject.toml holds the one version literal; the installed distribution's metadata carries it.
    __version__ = version(DISTRIBUTION_NAME)
except PackageNotFoundError:  # imported from a plugins folder without installing the project
    __version__ = "0+unknown"
