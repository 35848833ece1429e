"""The `ragops` CLI contract: one JSON document on stdout with --json, errors as JSON with a non-zero exit.

One test runs the real `python -m ragops`; the rest run the same entry point in-process (the `cli` fixture), so the
embedding model loads once for all of them."""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.model


@pytest.fixture
def ragops(cli):
    return cli


@pytest.fixture
def indexed(settings, corpus, ragops):
    ragops(settings, "refresh", "--json")
    return settings


def test_refresh_json_contract_in_a_real_process(settings, corpus):
    env = dict(os.environ, RAGOPS_HOME=str(settings.home), RAGOPS_SOURCE=settings.source)
    proc = subprocess.run([sys.executable, "-m", "ragops", "refresh", "--json"], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)  # exactly one JSON document
    assert set(report["documents"]) == {"added", "changed", "deleted", "unchanged", "quarantined"}
    assert set(report["chunks"]) == {"embedded", "reused", "deleted"}
    assert report["index_version"] == 1 and report["duration_s"] > 0
    assert "INFO" in proc.stderr or proc.stderr == "" or "ragops" in proc.stderr


def test_search_json_contract(indexed, ragops):
    out = json.loads(ragops(indexed, "search", "what happens to documents that fail validation", "-k", "3", "--json").stdout)
    assert len(out["results"]) == 3
    assert set(out["results"][0]) == {"chunk_id", "doc_uri", "score", "text"}
    assert "quarantined" in out["results"][0]["text"]


def test_search_batch(indexed, tmp_path, ragops):
    batch = tmp_path / "q.jsonl"
    batch.write_text('{"id": "q1", "question": "slack outbox token"}\n{"id": "q2", "question": "rate-limits heavy traffic"}\n')
    lines = [json.loads(line) for line in ragops(indexed, "search", "--batch", str(batch), "-k", "2").stdout.splitlines()]
    assert [line["id"] for line in lines] == ["q1", "q2"]
    assert lines[0]["results"][0]["doc_uri"].endswith("notes.txt")
    assert lines[1]["results"][0]["doc_uri"].endswith("page.html")


def test_errors_are_json_with_a_code(settings, corpus, tmp_path, ragops):
    proc = ragops(settings, "search", "anything", "--json", check=False)
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["error"]["code"] == "store_unavailable"
    ragops(settings, "refresh", "--json")
    for p in corpus.rglob("*.*"):
        p.unlink()
    (corpus / "only.md").write_text("# Only\n\none document left")
    blocked = ragops(settings, "refresh", "--json", check=False)
    assert blocked.returncode == 2
    error = json.loads(blocked.stdout)["error"]
    assert error["code"] == "refresh_blocked" and "--allow-mass-delete" in error["message"]
    outbox = [json.loads(line) for line in (settings.home / "outbox.jsonl").read_text().splitlines()]
    assert outbox[-1]["kind"] == "alert" and "allow-mass-delete" in outbox[-1]["text"]


def test_ask_json_contract(indexed, ragops):
    out = json.loads(ragops(indexed, "ask", "What happens to documents that fail validation?", "--user", "ann", "--json").stdout)
    assert set(out) == {"answer", "citations", "fallback", "variant", "release", "latency_ms"}
    assert out["fallback"] is None and out["variant"] == "stable" and out["citations"]
    off_topic = json.loads(ragops(indexed, "ask", "Best pizza dough hydration?", "--json").stdout)
    assert off_topic["fallback"] == "no_results" and off_topic["citations"] == []


def test_ask_without_an_index_is_store_unavailable(settings, corpus, ragops):
    proc = ragops(settings, "ask", "anything", "--json", check=False)
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["fallback"] == "store_unavailable"


def _outbox(settings):
    return [json.loads(line) for line in (settings.home / "outbox.jsonl").read_text().splitlines()]


def test_a_refresh_that_fails_prints_json_records_the_run_and_alerts(settings, corpus, ragops):
    ragops(settings, "refresh", "--json")
    (corpus / "notes.txt").write_text("# Slack\n\nchanged\n")
    [data] = list((settings.home / "lance" / "chunks.lance" / "data").glob("*.lance"))
    with open(data, "r+b") as f:
        f.truncate(1000)  # LanceDB answers with a RuntimeError
    proc = ragops(settings, "refresh", "--json", check=False)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["error"]["code"] == "store_unavailable"  # exactly one JSON document
    assert "Traceback" not in proc.stderr
    assert _outbox(settings)[-1]["kind"] == "alert" and "Document refresh failed" in _outbox(settings)[-1]["text"]
    from sqlalchemy import select

    from ragops.registry import Registry
    from ragops.registry.models import RefreshRun

    registry = Registry(settings.registry_url)
    with registry.session() as s:
        assert list(s.scalars(select(RefreshRun.status).order_by(RefreshRun.id))) == ["succeeded", "failed"]
    registry.dispose()


def test_an_unreadable_registry_gives_json_and_an_alert(settings, corpus, ragops):
    settings.home.mkdir(parents=True)
    (settings.home / "registry.sqlite").write_bytes(b"SQLite format 3\x00" + b"\x42" * 4000)  # truncated, garbled
    proc = ragops(settings, "refresh", "--json", check=False)
    assert proc.returncode == 1
    error = json.loads(proc.stdout)["error"]
    assert error["code"] == "store_unavailable" and "registry" in error["message"]
    assert "Traceback" not in proc.stderr
    assert _outbox(settings)[-1]["kind"] == "alert"


@pytest.mark.parametrize(("url", "code"), [
    ("postgres://svc:hunter2@db:5432/ragops", "config_error"),  # SQLAlchemy spells it postgresql://
    ("postgresql+psycopg://svc:hunter2@db:port/r", "config_error"),
    ("svc:hunter2@garbage", "config_error"),
    ("postgresql+psycopg://svc@127.0.0.1:9/r?password=hunter2", "store_unavailable"),  # well formed, nobody there
])
@pytest.mark.parametrize("command", [("refresh",), ("audit", "verify")])
def test_a_malformed_database_url_gives_the_json_error_with_the_url_masked(settings, corpus, ragops, url, code,
                                                                           command):
    proc = ragops(settings, *command, "--json", env={"RAGOPS_DATABASE_URL": url}, check=False)
    assert proc.returncode == 1
    error = json.loads(proc.stdout)["error"]
    assert error["code"] == code and "registry" in error["message"]
    assert "Traceback" not in proc.stderr and "hunter2" not in proc.stdout + proc.stderr


def test_doctor_json_contract(indexed, corpus, ragops):
    healthy = json.loads(ragops(indexed, "doctor", "--json").stdout)
    assert healthy["ok"] is True and healthy["documents"] == {"registry": 6, "index": 6}
    assert {"ghosts", "lost", "drifted", "runs", "lock", "counts", "index_version", "collection"} <= set(healthy)
    from sqlalchemy import delete

    from ragops.registry import Registry
    from ragops.registry.models import Document

    registry = Registry(indexed.registry_url)
    notes = (corpus / "notes.txt").as_uri()
    with registry.session() as s:
        s.execute(delete(Document).where(Document.uri == notes))
    registry.dispose()
    found = ragops(indexed, "doctor", "--json", check=False)
    assert found.returncode == 7
    report = json.loads(found.stdout)
    assert report["ok"] is False and report["ghosts"] == [notes]
    assert report["error"]["code"] == "index_inconsistent" and "--repair" in report["error"]["message"]
    fixed = json.loads(ragops(indexed, "doctor", "--repair", "--json").stdout)
    assert fixed["ok"] is True and fixed["repaired"]["before"]["ghosts"] == 1
