"""Airflow for DAG tests: a private AIRFLOW_HOME with a migrated SQLite metadata DB, set before airflow loads."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"
_home = tempfile.mkdtemp(prefix="ragops-airflow-")
os.environ.update({
    "AIRFLOW_HOME": _home,
    "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
})
if str(DAGS) not in sys.path:
    sys.path.insert(0, str(DAGS))  # Airflow puts the dags folder on sys.path; so do the tests


@pytest.fixture(scope="session")
def airflow_db():
    proc = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True,
                          env=dict(os.environ), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return _home


@pytest.fixture(scope="session")
def dagbag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(str(DAGS))


@pytest.fixture
def ragops_env(settings, monkeypatch):
    """Point the ragops settings that tasks build from the env at this test's home and corpus."""
    monkeypatch.setenv("RAGOPS_HOME", str(settings.home))
    monkeypatch.setenv("RAGOPS_SOURCE", settings.source)
    return settings


@pytest.fixture
def outbox(ragops_env):
    def read():
        import json

        path = ragops_env.home / "outbox.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    return read


@pytest.fixture
def docs_indexed(ragops_env, docs_index, monkeypatch):
    """The repo's docs/ indexed in this test's home (a copy of the session's), RAGOPS_SOURCE pointing at them."""
    monkeypatch.setenv("RAGOPS_SOURCE", docs_index.source)
    return ragops_env
