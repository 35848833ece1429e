"""Poisoned callers on PostgreSQL (finding 3): over-long ids used to make whole event batches fail and vanish, and
left no access-log row; the access log is now tamper-evident."""

import json
import random

import httpx
import pytest
from sqlalchemy import func, select, text

from support import live_server
from ragops.audit.permissions import hash_token
from ragops.registry import Registry
from ragops.registry.models import McpAccessLog, RequestEvent


@pytest.fixture
def pg_app(settings, corpus, embedder, postgres_url, tmp_path):
    from ragops.answer.pipeline import AnswerService
    from ragops.ingest.refresh import Refresher
    from serving.app import create_app

    grants = tmp_path / "grants.yaml"
    grants.write_text(json.dumps({"clients": [{"name": "reader", "token_sha256": hash_token("reader-token"),
                                               "tools": ["search_knowledge_base"], "collections": ["live"]}]}))
    cfg = settings.model_copy(update={"database_url": postgres_url, "mcp_permissions": grants,
                                      "rate_limit_address": "100000/minute", "rate_limit_global": "100000/minute"})
    Refresher(cfg, embedder=embedder).run()
    app = create_app(cfg, service=AnswerService(cfg, embedder=embedder))
    with live_server(app) as url:
        yield cfg, app, url


def test_poisoned_ids_erase_nothing_and_the_access_log_is_tamper_evident(pg_app, cli):
    cfg, app, url = pg_app

    def _verify(cfg):
        done = cli(None, "audit", "verify", "--json", check=False,
                   env={"RAGOPS_HOME": str(cfg.home), "RAGOPS_DATABASE_URL": cfg.database_url})
        return done.returncode, json.loads(done.stdout)

    kinds = ["normal"] * 150 + ["poisoned"] * 15
    random.Random(8).shuffle(kinds)
    with httpx.Client(base_url=url, timeout=60) as http:
        for i, kind in enumerate(kinds):
            rid = f"req-{i}" if kind == "normal" else f"poison-{i}-" + "x" * (65 + i % 50)
            reply = http.post("/v1/search", json={"question": "guards", "user_id": f"u{i % 7}"},
                              headers={"X-Request-ID": rid})
            assert reply.status_code == 200 and reply.headers["X-Request-ID"] == rid
        long_id = "mcp-" + "9" * 96
        reply = http.post("/mcp", json={"jsonrpc": "2.0", "id": long_id, "method": "tools/call",
                                        "params": {"name": "search_knowledge_base", "arguments": {"query": "guards"}}},
                          headers={"Authorization": "Bearer reader-token", "MCP-Protocol-Version": "2025-06-18",
                                   "Accept": "application/json, text/event-stream"})
        assert reply.status_code == 200 and reply.json()["id"] == long_id
        unknown = http.post("/mcp", json={"jsonrpc": "2.0", "id": "x" * 80, "method": "tools/call",
                                          "params": {"name": "no_such_tool", "arguments": {}}},
                            headers={"Authorization": "Bearer reader-token", "MCP-Protocol-Version": "2025-06-18",
                                     "Accept": "application/json, text/event-stream"})
        assert unknown.status_code == 200
    assert app.state.events.flush(timeout_s=120) and app.state.events.dropped == 0

    registry = Registry(cfg.database_url)
    with registry.session() as s:
        stored = s.scalars(select(RequestEvent.request_id)).all()
        log = s.scalars(select(McpAccessLog).order_by(McpAccessLog.seq)).all()
    # 165 HTTP searches and the MCP search (a request event of its own, whose id its client may rate)
    assert len(stored) == 166 and sum(r.startswith("poison-") for r in stored) == 15
    assert max(len(r) for r in stored) == 64
    assert [(r.tool, r.decision, r.status) for r in log] == [("search_knowledge_base", "allowed", "ok"),
                                                             ("no_such_tool", "denied", "denied")]
    assert log[0].request_id.startswith("mcp-9999") and len(log[0].request_id) == 64

    code, report = _verify(cfg)
    assert code == 0 and report["ok"] and report["rows"] == 2
    with registry.session() as s:
        s.execute(text("UPDATE mcp_access_log SET decision = 'allowed', status = 'ok' WHERE seq = 2"))
    code, report = _verify(cfg)
    assert code != 0 and [p["kind"] for p in report["problems"]] == ["edited"]
    with registry.session() as s:
        s.execute(text("DELETE FROM mcp_access_log WHERE seq = 1"))
        count = s.scalar(select(func.count()).select_from(McpAccessLog))
    code, report = _verify(cfg)
    assert count == 1 and code != 0 and {"deleted", "edited"} <= {p["kind"] for p in report["problems"]}
    registry.dispose()
