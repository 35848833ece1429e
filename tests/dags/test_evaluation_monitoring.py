"""evaluation, monitoring_review and health_probe end to end with dag.test(); Slack messages checked in the outbox."""

from datetime import datetime, timedelta, timezone

import pytest
from support import DAGS
from support import task_states as _states

from ragops.evaluation.testset import load_testset

DOCS = DAGS.parent / "docs"






@pytest.mark.slow
def test_evaluation_dag_reports_with_a_chart(dagbag, docs_indexed, outbox):
    run = dagbag.dags["evaluation"].test()
    assert run.state == "success", _states(run)
    [report] = [m for m in outbox() if m["text"].startswith("Evaluation")]
    assert f"Evaluation ok: live (stable) on {len(load_testset().items)} questions" in report["text"]
    assert report["files"] and report["files"][0].endswith(".png")
    assert (docs_indexed.home / "charts").exists()


@pytest.mark.slow
def test_evaluation_dag_skips_while_there_is_no_index(dagbag, ragops_env, outbox):
    """First boot: no "Evaluation ok ... hit rate 0.000" before the first refresh; the skip says why."""
    run = dagbag.dags["evaluation"].test()
    states = _states(run)
    assert states["evaluate"] == "skipped" and states["gate"] == "skipped" and states["post_report"] == "skipped"
    assert not [m for m in outbox() if m["text"].startswith("Evaluation")]


@pytest.mark.slow
def test_evaluation_dag_fails_red_on_regression(dagbag, docs_indexed, outbox, monkeypatch):
    monkeypatch.setenv("RAGOPS_EVAL_FLOORS", '{"hit_rate": 1.01}')  # an unreachable floor: a regression
    run = dagbag.dags["evaluation"].test()
    assert run.state == "failed" and _states(run)["gate"] == "failed" and _states(run)["post_report"] == "success"
    messages = outbox()
    assert any("REGRESSED" in m["text"] for m in messages)
    assert any(m["kind"] == "alert" and "evaluation regressed" in m["text"] for m in messages)


@pytest.mark.slow
def test_monitoring_review_posts_the_digest(dagbag, ragops_env, outbox):
    from ragops.monitoring.events import EventWriter
    from ragops.registry import Registry

    writer = EventWriter(Registry(ragops_env.registry_url))
    now = datetime.now(timezone.utc)
    for i in range(40):
        writer.record("request", ts=now - timedelta(minutes=i * 5), request_id=str(i), endpoint="/v1/ask", user_hash="u",
                      variant="canary" if i % 10 == 0 else "stable", release_id=1, latency_ms=5000.0 if i < 4 else 40.0,
                      status=503 if i < 4 else 200, fallback="llm_unavailable" if i < 4 else None, chunk_ids=[])
    writer.close()
    run = dagbag.dags["monitoring_review"].test()
    assert run.state == "success"
    messages = outbox()
    digest = next(m for m in messages if m["text"].startswith("Daily health digest"))
    assert "40 requests" in digest["text"] and "error rate 10.00%" in digest["text"]
    assert digest["files"] and digest["files"][0].endswith(".png")
    breaches = [m for m in messages if m["text"].startswith("SLO breached")]
    assert {b["text"].split(":")[1].strip() for b in breaches} >= {"error rate", "p95 latency"}


@pytest.mark.slow
def test_health_probe_is_quiet_until_the_first_refresh(dagbag, ragops_env, outbox, monkeypatch):
    monkeypatch.setenv("RAGOPS_PUBLIC_URL", "http://127.0.0.1:9")  # nothing listens: serving would be "down"
    run = dagbag.dags["health_probe"].test()
    assert run.state == "success" and _states(run) == {"probe": "skipped"}
    assert outbox() == []  # no "index is down" or "serving is down" before there is an index


@pytest.mark.slow
def test_health_probe_alerts_once(dagbag, docs_indexed, outbox, monkeypatch):
    monkeypatch.setenv("RAGOPS_PUBLIC_URL", "http://127.0.0.1:9")
    for _ in range(2):
        assert dagbag.dags["health_probe"].test().state == "success"
    downs = [m for m in outbox() if " is down" in m["text"]]
    assert [m["text"].split(" is down")[0] for m in downs] == ["serving"]
