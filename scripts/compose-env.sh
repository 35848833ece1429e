#!/usr/bin/env bash
# Write .env for docker compose from .env.example, with fresh random secrets. Refuses to overwrite an .env.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -e .env ]; then
  echo ".env exists already; edit it, or move it away to generate a new one" >&2
  exit 1
fi
secret() { openssl rand -hex 24; }
fernet() { openssl rand -base64 32 | tr '+/' '-_'; }  # what cryptography.fernet.Fernet.generate_key() returns
umask 077
sed -e "s|^POSTGRES_PASSWORD=|POSTGRES_PASSWORD=$(secret)|" \
    -e "s|^REGISTRY_DB_PASSWORD=|REGISTRY_DB_PASSWORD=$(secret)|" \
    -e "s|^AIRFLOW_FERNET_KEY=|AIRFLOW_FERNET_KEY=$(fernet)|" \
    -e "s|^AIRFLOW_JWT_SECRET=|AIRFLOW_JWT_SECRET=$(secret)|" \
    -e "s|^AIRFLOW_API_SECRET_KEY=|AIRFLOW_API_SECRET_KEY=$(secret)|" \
    -e "s|^GRAFANA_ADMIN_PASSWORD=|GRAFANA_ADMIN_PASSWORD=$(secret)|" \
    -e "s|^WEAVIATE_API_KEY=|WEAVIATE_API_KEY=$(secret)|" \
    -e "s|^WEAVIATE_READER_API_KEY=|WEAVIATE_READER_API_KEY=$(secret)|" \
    .env.example > .env
echo "wrote .env (mode 600); the Grafana admin password is GRAFANA_ADMIN_PASSWORD in it"
