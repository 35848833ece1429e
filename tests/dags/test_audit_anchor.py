"""audit_anchor end to end with dag.test(): a sound log is anchored and posted; a wiped one alerts and fails."""

from datetime import datetime, timezone

KEY = "an audit key of forty characters, or so"


def test_audit_anchor_publishes_the_signed_head_then_catches_a_wipe(dagbag, ragops_env, outbox, monkeypatch):
    from sqlalchemy import delete, update

    from ragops.audit import chain
    from ragops.audit.anchor import read_anchors
    from ragops.registry import Registry
    from ragops.registry.models import AuditChainHead, McpAccessLog

    monkeypatch.setenv("RAGOPS_AUDIT_SIGNING_KEY", KEY)
    registry = Registry(ragops_env.registry_url)
    with registry.session() as s:
        chain.append(s, [dict(ts=datetime.now(timezone.utc), client="bot", tool="search_knowledge_base",
                              decision="allowed", status="ok") for _ in range(4)], KEY.encode())
    assert dagbag.dags["audit_anchor"].test().state == "success"
    [anchor] = read_anchors(ragops_env.audit_anchor_path)
    assert anchor.seq == 4 and anchor.valid(KEY.encode())
    assert any(m["kind"] == "report" and "anchored (signed): row 4" in m["text"] for m in outbox())

    with registry.session() as s:  # an insider empties the log and resets its head
        s.execute(delete(McpAccessLog))
        s.execute(update(AuditChainHead).values(seq=0, head_hash=chain.GENESIS))
    registry.dispose()
    assert dagbag.dags["audit_anchor"].test().state == "failed"
    assert len(read_anchors(ragops_env.audit_anchor_path)) == 1
    assert any(m["kind"] == "alert" and "MCP access log tampered" in m["text"] and "wiped" in m["text"]
               for m in outbox())
