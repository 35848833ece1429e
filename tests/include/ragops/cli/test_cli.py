"""The `ragops` CLI contract: one JSON document on stdout with --json, errors as JSON with a non-zero exit."""

import json
import os
import subprocess
import sys

import pytest


def ragops(settings, *args, check=True):
    env = dict(os.environ, RAGOPS_HOME=str(settings.home), RAGOPS_SOURCE=settings.source)
    proc = subprocess.run([sys.executable, "-m", "ragops", *args], env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


@pytest.fixture
def indexed(settings, corpus):
    ragops(settings, "refresh", "--json")
    return settings


def test_refresh_json_contract(settings, corpus):
    proc = ragops(settings, "refresh", "--json")
    report = json.loads(proc.stdout)  # exactly one JSON document
    assert set(report["documents"]) == {"added", "changed", "deleted", "unchanged", "quarantined"}
    assert set(report["chunks"]) == {"embedded", "reused", "deleted"}
    assert report["index_version"] == 1 and report["duration_s"] > 0
    assert "INFO" in proc.stderr or proc.stderr == "" or "ragops" in proc.stderr


def test_search_json_contract(indexed):
    out = json.loads(ragops(indexed, "search", "what happens to documents that fail validation", "-k", "3", "--json").stdout)
    assert len(out["results"]) == 3
    assert set(out["results"][0]) == {"chunk_id", "doc_uri", "score", "text"}
    assert "quarantined" in out["results"][0]["text"]


def test_search_batch(indexed, tmp_path):
    batch = tmp_path / "q.jsonl"
    batch.write_text('{"id": "q1", "question": "slack outbox token"}\n{"id": "q2", "question": "rate-limits heavy traffic"}\n')
    lines = [json.loads(line) for line in ragops(indexed, "search", "--batch", str(batch), "-k", "2").stdout.splitlines()]
    assert [line["id"] for line in lines] == ["q1", "q2"]
    assert lines[0]["results"][0]["doc_uri"].endswith("notes.txt")
    assert lines[1]["results"][0]["doc_uri"].endswith("page.html")


def test_errors_are_json_with_a_code(settings, corpus, tmp_path):
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


def test_ask_json_contract(indexed):
    out = json.loads(ragops(indexed, "ask", "What happens to documents that fail validation?", "--user", "ann", "--json").stdout)
    assert set(out) == {"answer", "citations", "fallback", "variant", "release", "latency_ms"}
    assert out["fallback"] is None and out["variant"] == "stable" and out["citations"]
    off_topic = json.loads(ragops(indexed, "ask", "Best pizza dough hydration?", "--json").stdout)
    assert off_topic["fallback"] == "no_results" and off_topic["citations"] == []


def test_ask_without_an_index_is_store_unavailable(settings, corpus):
    proc = ragops(settings, "ask", "anything", "--json", check=False)
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["fallback"] == "store_unavailable"
