# The project's Airflow image: the official 3.3.2 image plus our pinned requirements and the project package
# (the adobe_privacy provider, privacy_pipeline and privacy_emulator), so every component, the triggerer
# included, imports the same code from site-packages. No _PIP_ADDITIONAL_REQUIREMENTS at container start.
#
#   docker build -t airflow-adobe-privacy:latest .
FROM apache/airflow:3.3.2-python3.11

# Installing "apache-airflow==<image version>" alongside the pins keeps pip from moving Airflow itself.
COPY --chown=airflow:root requirements.txt /opt/airflow/project/requirements.txt
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /opt/airflow/project/requirements.txt

# The package last: code changes rebuild only this layer. --no-deps: the pins above are the whole set.
COPY --chown=airflow:root pyproject.toml README.md /opt/airflow/project/
COPY --chown=airflow:root plugins /opt/airflow/project/plugins
COPY --chown=airflow:root include /opt/airflow/project/include
RUN pip install --no-cache-dir --no-deps /opt/airflow/project \
 && python -c "import adobe_privacy, privacy_pipeline, privacy_emulator"

COPY --chown=airflow:root dags /opt/airflow/dags

# Owned by airflow, so the named volumes mounted here start out writable for the airflow user.
RUN mkdir -p /opt/airflow/config /opt/airflow/emulator-data
