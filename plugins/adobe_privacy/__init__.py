"""Apache Airflow integration for Adobe Experience Platform Privacy Service.

Shaped like a first-class provider (distribution ``airflow-adobe-privacy``, registered through the
``apache_airflow_provider`` entry point): hooks, triggers, sensors and operators for the Privacy
Service and Data Hygiene APIs, authenticated with an IMS OAuth server-to-server token.

``adobe_privacy.__version__`` is the installed distribution's version: pyproject.toml holds the one
literal. It is read on first access, so importing the package at DAG parse time stays cheap.
"""

from __future__ import annotations

DISTRIBUTION_NAME = "airflow-adobe-privacy"
UNKNOWN_VERSION = "0+unknown"  # imported from a plugins folder without installing the project


def __getattr__(name: str) -> str:
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version(DISTRIBUTION_NAME)
    except PackageNotFoundError:
        value = UNKNOWN_VERSION
    globals()["__version__"] = value
    return value
