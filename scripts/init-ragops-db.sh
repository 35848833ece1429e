#!/usr/bin/env bash
# Run once by the postgres image on an empty data directory (docker-entrypoint-initdb.d): the ragops registry gets
# its own user and database beside Airflow's, with the password from REGISTRY_DB_PASSWORD (see .env.example).
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -v password="$REGISTRY_DB_PASSWORD" <<'SQL'
CREATE USER ragops WITH PASSWORD :'password';
CREATE DATABASE ragops OWNER ragops;
SQL
