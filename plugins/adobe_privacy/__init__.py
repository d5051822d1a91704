"""Apache Airflow integration for Adobe Experience Platform Privacy Service.

Shaped like a first-class provider (distribution ``airflow-adobe-privacy``, registered through the
``apache_airflow_provider`` entry point): hook, async hook, trigger and sensor for the Privacy Service
and Data Hygiene APIs, authenticated with an IMS OAuth server-to-server token.
"""

from __future__ import annotations

__version__ = "0.1.0"
