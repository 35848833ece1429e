# The Airflow configuration that `make up` runs with; the browser test sources it too, so it tests the same.
# Needs ROOT (the repository) and RAGOPS_HOME; AIRFLOW_PORT picks the UI's port (default 8080).
export AIRFLOW_HOME="${AIRFLOW_HOME:-$RAGOPS_HOME/airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$ROOT/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
# The UI and the API listen on loopback only; links and the task runners' execution API use the same address.
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT="${AIRFLOW_PORT:-8080}"
export AIRFLOW__API__BASE_URL="http://127.0.0.1:$AIRFLOW__API__PORT"
# One running task per core (at least two): each task process loads torch and the embedding model, and the
# default of 32 LocalExecutor workers only makes them fight for the CPU. Set AIRFLOW__CORE__PARALLELISM to override.
_cores=$(nproc 2>/dev/null || echo 2)
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-$(( _cores < 2 ? 2 : _cores ))}"
export AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES="${AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES:-1}"
unset _cores
