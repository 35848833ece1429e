"""Every DAG parses cleanly, is configured for operations, and parsing touches no network, DB or heavy library."""

import json
from datetime import timedelta
import os
import subprocess
import sys

from support import DAGS

EXPECTED = {"document_refresh", "source_watch", "evaluation", "monitoring_review", "health_probe", "reindex",
            "canary_rollout", "mcp_permission_audit", "mcp_tool_contracts", "model_training", "audit_anchor",
            "quality_drift"}


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert EXPECTED <= set(dagbag.dags)


def test_operational_settings(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags and "ragops" in dag.tags, dag_id
        assert dag.doc_md and len(dag.doc_md) > 200, dag_id
        assert dag.max_active_runs == 1, dag_id
        assert dag.catchup is False, dag_id
        for task in dag.tasks:
            assert task.owner == "ragops", (dag_id, task.task_id)
            assert task.retries >= 2, (dag_id, task.task_id)
            assert task.retry_exponential_backoff >= 2, (dag_id, task.task_id)  # True means 1.0, a constant delay
            assert task.on_failure_callback, (dag_id, task.task_id)
            # no task may hang forever (issue 24): each is stopped, its lease released, and retried
            assert task.execution_timeout is not None, (dag_id, task.task_id)
            assert timedelta(minutes=1) <= task.execution_timeout <= timedelta(hours=3), (dag_id, task.task_id)


def test_timeouts_leave_room_for_the_bounded_waits_inside_them(dagbag):
    from ragops.config import Settings

    cfg = Settings()
    commit = dagbag.dags["document_refresh"].get_task("commit").execution_timeout
    assert commit > timedelta(seconds=cfg.weaviate_index_wait_s + cfg.lock_ttl_s)  # the wait fails first, clearly
    probe = dagbag.dags["health_probe"]
    assert probe.get_task("probe").execution_timeout < probe.dagrun_timeout
    assert dagbag.dags["model_training"].get_task("train").execution_timeout > timedelta(seconds=7200)  # max budget


def test_document_refresh_params_render_as_a_form(dagbag):
    params = dagbag.dags["document_refresh"].params
    schema = {name: params.get_param(name).schema for name in params}
    assert schema["source"]["type"] == ["null", "string"]
    assert schema["full_rebuild"]["type"] == "boolean" and schema["allow_mass_delete"]["type"] == "boolean"
    assert all("title" in s for s in schema.values())


PARSE = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from airflow.sdk import BaseHook, Variable
def forbidden(*a, **k):
    raise AssertionError("connection or variable looked up while parsing")
BaseHook.get_connection = staticmethod(forbidden)
Variable.get = staticmethod(forbidden)
import socket
socket.socket.connect = forbidden
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(sys.argv[1])
heavy = sorted(m for m in ("torch", "sentence_transformers", "lancedb", "ragas", "great_expectations", "pandas",
                           "weaviate", "ragops.ingest.refresh") if m in sys.modules)
print(json.dumps({"errors": {k: v[-500:] for k, v in bag.import_errors.items()}, "dags": sorted(bag.dags), "heavy": heavy}))
"""


def test_parsing_is_cheap_and_offline(airflow_db):
    proc = subprocess.run([sys.executable, "-c", PARSE, str(DAGS)], capture_output=True, text=True,
                          env=dict(os.environ), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["errors"] == {}
    assert EXPECTED <= set(result["dags"])
    assert result["heavy"] == [], f"imported at parse time: {result['heavy']}"
