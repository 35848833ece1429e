# The production image for Airflow components, Celery workers and the serving app (see docker-compose.yaml).
FROM apache/airflow:3.3.2-python3.11
USER root
RUN apt-get update && apt-get install -y --no-install-recommends build-essential && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /opt/ragops/data /opt/airflow/auth && chown -R airflow:0 /opt/ragops /opt/airflow/auth
# A fresh named volume mounted on /opt/ragops/data copies this ownership, so the Airflow user (uid 50000) can write
# to it; docker-compose.yaml's ragops-data-init also chowns volumes created before.
USER airflow
COPY --chown=airflow:root requirements.txt constraints.txt pyproject.toml README.md /opt/ragops/
COPY --chown=airflow:root include /opt/ragops/include
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
 && pip install --no-cache-dir -r /opt/ragops/requirements.txt -c /opt/ragops/constraints.txt \
 && pip install --no-cache-dir --no-deps -e /opt/ragops
COPY --chown=airflow:root dags /opt/airflow/dags
COPY --chown=airflow:root plugins /opt/airflow/plugins
COPY --chown=airflow:root serving /opt/ragops/serving
COPY --chown=airflow:root docs /opt/ragops/docs
ENV HF_HUB_OFFLINE=1 PYTHONPATH=/opt/ragops
