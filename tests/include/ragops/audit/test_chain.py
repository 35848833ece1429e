"""The MCP access log's hash chain: concurrent writers extend one chain; edits and deletions are found."""

import json
import threading
from datetime import datetime, timezone

import pytest
from sqlalchemy import delete, text, update

from ragops.audit.chain import append, verify
from ragops.registry import Registry
from ragops.registry.models import McpAccessLog


def _row(i, **kw):
    return dict(ts=datetime.now(timezone.utc), client="reader", tool="search_knowledge_base", decision="allowed",
                reason="granted", latency_ms=1.25 + i, status="ok", request_id=str(i), args_hash="a" * 32) | kw


def test_concurrent_writers_extend_one_chain(registry):
    """Four writers (as four replicas would, each with its own engine) append at once; the chain stays whole."""
    def writer(n):
        own = Registry(registry.url, migrate=False)
        for i in range(10):
            with own.session() as s:
                append(s, [_row(i, client=f"replica-{n}"), _row(i + 100, client=f"replica-{n}")])
        own.dispose()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with registry.session() as s:
        result = verify(s)
    assert result.ok, result.problems
    assert result.rows == 80 and result.head_seq == 80


def test_edits_and_deletions_are_detected(registry):
    with registry.session() as s:
        append(s, [_row(i) for i in range(10)])
    with registry.session() as s:
        assert verify(s).ok
        s.execute(update(McpAccessLog).where(McpAccessLog.seq == 3).values(decision="denied"))
        s.execute(delete(McpAccessLog).where(McpAccessLog.seq == 6))
        s.execute(delete(McpAccessLog).where(McpAccessLog.seq == 10))
    with registry.session() as s:
        problems = verify(s).problems
    kinds = {(p["kind"], json.dumps(p["seq"])) for p in problems}
    assert ("edited", "3") in kinds and ("deleted", "[6, 6]") in kinds and ("truncated", "[10, 10]") in kinds


def test_a_row_inserted_around_the_chain_is_detected(registry):
    with registry.session() as s:
        append(s, [_row(0)])
        s.add(McpAccessLog(**_row(1)))
    with registry.session() as s:
        assert [p["kind"] for p in verify(s).problems] == ["unchained"]


def test_ragops_audit_verify(tmp_path, registry, cli):
    """The command reports an intact log with exit 0 and an edited one with a JSON error and a non-zero exit."""
    with registry.session() as s:
        append(s, [_row(i) for i in range(3)])
    env = {"RAGOPS_HOME": str(tmp_path / "home"), "RAGOPS_DATABASE_URL": registry.url}

    def run():
        done = cli(None, "audit", "verify", "--json", env=env, check=False)
        return done.returncode, json.loads(done.stdout)

    code, body = run()
    assert code == 0 and body["ok"] and body["rows"] == 3
    with registry.session() as s:
        s.execute(text("UPDATE mcp_access_log SET client = 'someone-else' WHERE seq = 2"))
    code, body = run()
    assert code != 0 and body["error"]["code"] == "audit_log_tampered" and "row 2" in body["error"]["message"]
