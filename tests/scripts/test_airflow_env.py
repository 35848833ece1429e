"""The Airflow configuration `make up` runs with (scripts/airflow-env.sh, which the browser test uses too)."""

import os
import subprocess

from support import REPO


def _env(**extra) -> dict:
    script = "source scripts/airflow-env.sh && env"
    base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    out = subprocess.run(["bash", "-c", script], cwd=REPO, env=base | {"ROOT": str(REPO), "RAGOPS_HOME": "/tmp/h"} | extra,
                         capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if line.startswith("AIRFLOW"))


def test_loopback_only_one_task_per_core_and_links_on_the_chosen_port():
    env = _env(AIRFLOW_PORT="18080")
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert env["AIRFLOW__API__BASE_URL"] == "http://127.0.0.1:18080"  # the task runners' execution API follows it
    assert int(env["AIRFLOW__CORE__PARALLELISM"]) == max(2, len(os.sched_getaffinity(0)))  # what nproc counts
    assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == str(REPO / "plugins")
    assert env["AIRFLOW_HOME"] == "/tmp/h/airflow"


def test_an_explicit_parallelism_wins():
    assert _env(AIRFLOW__CORE__PARALLELISM="6")["AIRFLOW__CORE__PARALLELISM"] == "6"
