#!/usr/bin/env bash
# `make up`: Airflow standalone with the ragops DAGs, the serving app beside it, and a first refresh.
# Ctrl-C stops everything this script started (by process group, nothing else).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/.venv/bin

export RAGOPS_HOME="${RAGOPS_HOME:-$ROOT/.ragops}"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$RAGOPS_HOME/airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$ROOT/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
export AIRFLOW__API__PORT="${AIRFLOW_PORT:-8080}"
export RAGOPS_SERVE_PORT="${RAGOPS_SERVE_PORT:-8000}"
export PATH="$BIN:$PATH"
mkdir -p "$RAGOPS_HOME" "$AIRFLOW_HOME"
LOGS="$RAGOPS_HOME/logs"; mkdir -p "$LOGS"

pids=()
stop() {
  trap - INT TERM EXIT
  echo; echo "stopping ragops (process groups: ${pids[*]:-none})"
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop INT TERM EXIT

echo "ragops: initialising the registry and Airflow's metadata database"
"$BIN/python" -c "from ragops.config import Settings; from ragops.registry import Registry; s=Settings(); s.ensure_home(); Registry(s.registry_url)"
airflow db migrate >"$LOGS/airflow-migrate.log" 2>&1

echo "ragops: starting Airflow (log: $LOGS/airflow.log)"
setsid airflow standalone >"$LOGS/airflow.log" 2>&1 &
pids+=($!)

echo "ragops: starting the serving app on 127.0.0.1:$RAGOPS_SERVE_PORT (log: $LOGS/serve.log)"
setsid "$BIN/ragops" serve --port "$RAGOPS_SERVE_PORT" >"$LOGS/serve.log" 2>&1 &
pids+=($!)

printf "ragops: waiting for the Airflow UI on :%s " "$AIRFLOW__API__PORT"
for _ in $(seq 1 180); do
  curl -sf "http://127.0.0.1:$AIRFLOW__API__PORT/api/v2/monitor/health" >/dev/null 2>&1 && break
  printf "."; sleep 2
done
echo
printf "ragops: waiting for the DAGs to be parsed "
for _ in $(seq 1 120); do
  airflow dags list -o plain 2>/dev/null | grep -q document_refresh && break
  printf "."; sleep 2
done
echo
airflow dags unpause document_refresh >/dev/null 2>&1 || true
airflow dags trigger document_refresh >/dev/null && echo "ragops: triggered a first document_refresh over $("$BIN/python" -c 'from ragops.config import Settings; print(Settings().source)')"

password=$(cat "$AIRFLOW_HOME"/simple_auth_manager_passwords.json.generated 2>/dev/null || echo "see $LOGS/airflow.log")
cat <<MSG

  ragops is up.
  Airflow UI    http://127.0.0.1:$AIRFLOW__API__PORT   login: $password
                open DAG "document_refresh" to watch the first refresh
  Serving API   http://127.0.0.1:$RAGOPS_SERVE_PORT/docs   (answers once the first refresh is green)
  MCP server    http://127.0.0.1:$RAGOPS_SERVE_PORT/mcp
  Slack outbox  $RAGOPS_HOME/outbox.jsonl   (set RAGOPS_SLACK_TOKEN to post to Slack)
  CLI           .venv/bin/ragops search "how do I refresh the index?"

  Press Ctrl-C to stop everything started here.
MSG
wait "${pids[0]}"
