"""reindex, canary_rollout and mcp_permission_audit end to end with dag.test()."""

import json
import shutil

import pytest
from sqlalchemy import select

from support import DAGS
from support import task_states as _states

DOCS = DAGS.parent / "docs"






@pytest.mark.slow
def test_reindex_refuses_a_candidate_that_evaluates_worse(dagbag, docs_indexed, tmp_path, outbox):
    from ragops.registry import Registry
    from ragops.registry.models import IndexVersion, Release

    worse = tmp_path / "worse"
    shutil.copytree(DOCS, worse)
    for name in ("refreshing-documents.md", "serving.md"):  # same documents, but the answers are gone
        (worse / name).write_text("# Notes\n\nThis page intentionally left without content about the platform.\n")
    run = dagbag.dags["reindex"].test(run_conf={"source": worse.as_uri()})
    assert run.state == "failed" and _states(run)["build_evaluate_register"] == "failed"
    [rejected] = [m for m in outbox() if "rejected" in m["text"]]
    assert rejected["kind"] == "alert" and "evaluates worse than the stable release" in rejected["text"]
    registry = Registry(docs_indexed.registry_url)
    with registry.session() as s:
        assert s.scalars(select(IndexVersion.status).order_by(IndexVersion.id.desc())).first() == "rejected"
        assert [r.name for r in s.scalars(select(Release))] == ["live"]
        live = s.scalars(select(IndexVersion).where(IndexVersion.status == "live")).one()
    assert live.collection == "chunks"  # the live index was never touched


@pytest.mark.slow
def test_reindex_registers_a_good_candidate_and_the_canary_starts(dagbag, docs_indexed, outbox):
    # dag.test() keeps the last run_conf in the DAG's params, so every run here passes its own
    run = dagbag.dags["reindex"].test(run_conf={"source": "", "embedding_model": "", "chunk_max_tokens": 0, "testset": ""})
    assert run.state == "success", _states(run)
    name = run.get_task_instance("build_evaluate_register").xcom_pull(task_ids="build_evaluate_register")["release"]
    assert name.startswith("reindex-v")
    start = dagbag.dags["canary_rollout"].test(run_conf={"action": "start", "release": name})
    assert start.state == "success"
    gate = dagbag.dags["canary_rollout"].test(run_conf={"action": "gate", "release": ""})
    assert gate.state == "success"
    again = dagbag.dags["canary_rollout"].test(run_conf={"action": "start", "release": name})
    assert again.state == "failed"  # refused at once (a rollout is running), not retried
    texts = [m["text"] for m in outbox()]
    assert any(t.startswith(f"Rollout start: {name}") for t in texts)
    assert any(t.startswith("Rollout hold") and "canary requests so far" in t for t in texts)
    assert any(t.startswith(f"Reindex: candidate release {name} registered") for t in texts)


@pytest.mark.slow
def test_permission_audit_dag_fails_on_critical_findings(dagbag, ragops_env, outbox, tmp_path, monkeypatch):
    from datetime import datetime, timedelta, timezone

    from ragops.audit.analysis import previous_month
    from ragops.audit.permissions import hash_token
    from ragops.registry import Registry
    from ragops.registry.models import McpAccessLog

    permissions = tmp_path / "perm.yaml"
    permissions.write_text(json.dumps({"clients": [
        {"name": "bot", "token_sha256": hash_token("t"), "tools": ["search_knowledge_base"], "collections": ["chunks"]}]}))
    monkeypatch.setenv("RAGOPS_MCP_PERMISSIONS", str(permissions))
    start, _ = previous_month(datetime.now(timezone.utc))
    registry = Registry(ragops_env.registry_url)
    with registry.session() as s:
        s.add(McpAccessLog(ts=start + timedelta(days=2), client="bot", tool="search_knowledge_base", decision="allowed",
                           status="ok"))
    assert dagbag.dags["mcp_permission_audit"].test().state == "success"
    with registry.session() as s:
        s.add(McpAccessLog(ts=start + timedelta(days=3), client="ghost", tool="search_knowledge_base", decision="allowed",
                           status="ok"))
    run = dagbag.dags["mcp_permission_audit"].test()
    assert run.state == "failed"
    reports = [m for m in outbox() if m["text"].startswith("MCP permission audit")]
    assert "no findings" in reports[0]["text"] and "1 critical" in reports[1]["text"]
    assert any(m["kind"] == "alert" and "critical MCP audit" in m["text"] for m in outbox())


@pytest.mark.slow
def test_model_training_trains_stores_and_proposes_through_evaluation(dagbag, docs_indexed, outbox, monkeypatch,
                                                                      tmp_path):
    """The DAG end to end on a tiny base model (the real one trains the same way, only longer)."""
    from model_servers import tiny_sentence_transformer

    tiny = tiny_sentence_transformer(tmp_path)
    monkeypatch.setattr("ragops.training.run.resolve_model_path", lambda name: str(tiny))
    monkeypatch.setattr("ragops.training.run.HELD_OUT_LIMIT", 8)
    run = dagbag.dags["model_training"].test(run_conf={"kinds": "reranker", "max_seconds": 20, "propose": True,
                                                       "testset": ""})
    assert run.state == "success", _states(run)
    [refs] = [run.get_task_instance("train").xcom_pull(task_ids="train")]
    assert refs == ["trained:reranker/1"]
    manifest = json.loads((docs_indexed.home / "models" / "reranker" / "1" / "manifest.json").read_text())
    assert manifest["data_hash"] and manifest["pairs"]["train"]["heading"] > 0
    assert manifest["votes"] == {"votes": 0, "pairs": 0, "skipped": {}}  # read, with the evaluation questions left out
    [outcome] = run.get_task_instance("propose").xcom_pull(task_ids="propose")
    assert outcome["ref"] == "trained:reranker/1" and ("release" in outcome or "rejected" in outcome)
    assert any(m["text"].startswith("Model training: trained:reranker/1") for m in outbox())
