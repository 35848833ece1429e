#!/usr/bin/env bash
# `make up`: Airflow standalone with the ragops DAGs and the RAG Ops page, the serving app beside it, and on first
# boot exactly one document_refresh. Ctrl-C stops everything this script started (by process group, nothing else).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/.venv/bin

export RAGOPS_HOME="${RAGOPS_HOME:-$ROOT/.ragops}"
export RAGOPS_SERVE_PORT="${RAGOPS_SERVE_PORT:-8000}"
export RAGOPS_PUBLIC_URL="${RAGOPS_PUBLIC_URL:-http://127.0.0.1:$RAGOPS_SERVE_PORT}"
export RAGOPS_MCP_PERMISSIONS="${RAGOPS_MCP_PERMISSIONS:-$RAGOPS_HOME/mcp-permissions.yaml}"
export PATH="$BIN:$PATH"
source scripts/airflow-env.sh
mkdir -p "$RAGOPS_HOME" "$AIRFLOW_HOME"
LOGS="$RAGOPS_HOME/logs"; mkdir -p "$LOGS"
[ -f "$RAGOPS_MCP_PERMISSIONS" ] || printf 'clients: []\n' >"$RAGOPS_MCP_PERMISSIONS"

source scripts/process-groups.sh
stop_on_signals

echo "ragops: initialising the registry and Airflow's metadata database"
"$BIN/python" -c "from ragops.config import Settings; from ragops.registry import Registry; s=Settings(); s.ensure_home(); Registry(s.registry_url)"
airflow db migrate >"$LOGS/airflow-migrate.log" 2>&1

echo "ragops: starting Airflow on 127.0.0.1:$AIRFLOW__API__PORT with $AIRFLOW__CORE__PARALLELISM task slots (log: $LOGS/airflow.log)"
start_group "$LOGS/airflow.log" airflow standalone

echo "ragops: starting the serving app on 127.0.0.1:$RAGOPS_SERVE_PORT (log: $LOGS/serve.log)"
start_group "$LOGS/serve.log" "$BIN/ragops" serve --host 127.0.0.1 --port "$RAGOPS_SERVE_PORT"

printf "ragops: waiting for the Airflow UI "
for _ in $(seq 1 180); do
  curl -sf "$AIRFLOW__API__BASE_URL/api/v2/monitor/health" >/dev/null 2>&1 && break
  printf "."; sleep 2
done
echo
printf "ragops: waiting for the DAGs to be parsed "
for _ in $(seq 1 120); do
  airflow dags list -o plain 2>/dev/null | grep -q document_refresh && break
  printf "."; sleep 2
done
echo
# First boot: this is the only refresh (no DAG catches up a past slot; source_watch waits for this one).
if "$BIN/python" -c "
import sys
from ragops.config import Settings
from ragops.registry import Registry
from ragops.registry.db import last_successful_refresh
with Registry(Settings().registry_url).session() as s:
    sys.exit(0 if last_successful_refresh(s) is None else 1)"; then
  airflow dags trigger document_refresh >/dev/null && echo "ragops: triggered the first document_refresh over $("$BIN/python" -c 'from ragops.config import Settings; print(Settings().source)')"
else
  echo "ragops: the index is there already; document_refresh runs weekly, on source changes and from Trigger"
fi

user=admin password="(see $LOGS/airflow.log)"
if [ -f "$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated" ]; then
  password=$("$BIN/python" -c "import json,sys; print(json.load(open(sys.argv[1]))['admin'])" \
    "$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated")
fi
UI=$AIRFLOW__API__BASE_URL
cat <<MSG

  ragops is up.

  Airflow UI    $UI
                user: $user   password: $password
  RAG Ops page  $UI/plugin/rag-ops   (also "RAG Ops" in the navigation)
  First run     $UI/dags/document_refresh   (evaluation follows it; health_probe starts after it)
  Serving API   http://127.0.0.1:$RAGOPS_SERVE_PORT/docs   (answers once the first refresh is green)
  MCP server    http://127.0.0.1:$RAGOPS_SERVE_PORT/mcp   needs a bearer token; issue one (shown once) with
                  RAGOPS_MCP_PERMISSIONS=$RAGOPS_MCP_PERMISSIONS .venv/bin/ragops token issue my-client
  Slack outbox  $RAGOPS_HOME/outbox.jsonl   (set RAGOPS_SLACK_TOKEN to post to Slack)
  CLI           .venv/bin/ragops search "how do I refresh the index?"

  Press Ctrl-C to stop everything started here.
MSG
wait "${RAGOPS_GROUPS[0]}"
