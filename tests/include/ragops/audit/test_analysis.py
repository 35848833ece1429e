"""The audit on a fixture access log finds each kind of finding, and nothing on a clean log."""

from datetime import datetime, timedelta, timezone

import pytest

from ragops.audit.analysis import CriticalFindings, fail_on_critical, previous_month, run_audit
from ragops.audit.permissions import Permissions, hash_token
from ragops.registry import Registry
from ragops.registry.models import McpAccessLog

END = datetime(2026, 11, 1, tzinfo=timezone.utc)
START = datetime(2026, 10, 1, tzinfo=timezone.utc)


def grant(name, tools, collections=("chunks",), **extra):
    return {"name": name, "token_sha256": hash_token(f"t-{name}"), "tools": list(tools), "collections": list(collections)} | extra


def log(registry, rows):
    with registry.session() as s:
        s.add_all(McpAccessLog(ts=START + timedelta(days=1, minutes=i), client=client, tool=tool, decision=decision,
                               reason="", latency_ms=1.0, status="ok" if decision == "allowed" else "denied",
                               request_id=str(i), args_hash="h")
                  for i, (client, tool, decision) in enumerate(rows))


CLEAN = {"clients": [grant("bot", ["search_knowledge_base", "get_document"]), grant("reader", ["get_document"])]}
CLEAN_LOG = [("bot", "search_knowledge_base", "allowed"), ("bot", "get_document", "allowed"),
             ("reader", "get_document", "allowed"), ("reader", "search_knowledge_base", "denied")]


@pytest.fixture
def registry(tmp_path):
    return Registry(f"sqlite:///{tmp_path / 'r.sqlite'}")


def test_clean_permissions_and_log_give_no_findings(settings, registry):
    log(registry, CLEAN_LOG)
    report = run_audit(settings, START, END, registry=registry, permissions=Permissions.parse(CLEAN))
    assert report.findings == []
    fail_on_critical(report)


def test_every_kind_of_finding(settings, registry):
    run_audit(settings, START - timedelta(days=31), START, registry=registry, permissions=Permissions.parse(CLEAN))
    risky = {"clients": [
        grant("bot", ["search_knowledge_base", "get_document", "delete_document"]),       # never used delete
        grant("admin", ["*"], collections=["*"]),                                         # wildcard grants
        grant("w1", ["delete_document"]), grant("w2", ["delete_document"]),               # destructive tool, widely
        grant("old", ["get_document"], expires="2026-10-15"),                             # expired
        grant("soon", ["get_document"], expires="2026-11-10"),                            # expiring soon
        grant("idle", ["get_document"]),                                                  # never used
        grant("gone", ["get_document"], revoked=True),                                    # revoked, yet calling
        grant("late", ["get_document"], revoked=True, revoked_at="2026-10-20T00:00:00+00:00"),  # revoked after its call
    ]}
    rows = [("bot", "search_knowledge_base", "allowed"), ("bot", "get_document", "allowed"),
            ("admin", "get_document", "allowed"), ("w1", "delete_document", "allowed"), ("w2", "delete_document", "allowed"),
            ("old", "get_document", "allowed"), ("soon", "get_document", "allowed")]
    rows += [("bot", "search_knowledge_base", "denied")] * 12                               # a spike of denials
    rows += [("unknown", "-", "denied")] * 3 + [("anonymous", "-", "denied")] * 2         # unknown tokens
    rows += [("gone", "get_document", "allowed")] + [("ghost", "get_document", "allowed")]  # revoked, removed
    rows += [("late", "get_document", "allowed")]                                          # on Oct 2, before Oct 20
    log(registry, rows)
    report = run_audit(settings, START, END, registry=registry, permissions=Permissions.parse(risky))
    kinds = {(f.kind, f.client): f.severity for f in report.findings}
    assert kinds[("unused_grant", "bot")] == "low"
    assert kinds[("wildcard_grant", "admin")] == "high" and kinds[("broad_collections", "admin")] == "medium"
    assert kinds[("destructive_tool_widely_granted", "")] == "high"
    assert kinds[("token_expired", "old")] == "high" and kinds[("token_expiring", "soon")] == "medium"
    assert kinds[("token_never_used", "idle")] == "low"
    assert kinds[("denied_spike", "bot")] == "high"
    assert kinds[("unknown_client_calls", "")] == "medium"
    assert kinds[("calls_from_revoked_client", "gone")] == "critical"
    assert kinds[("calls_before_revocation", "late")] == "info" and ("calls_from_revoked_client", "late") not in kinds
    assert kinds[("calls_from_removed_client", "ghost")] == "critical"
    assert kinds[("drift_client_added", "admin")] == "medium" and kinds[("drift_client_removed", "reader")] == "info"
    assert kinds[("drift_grant_changed", "bot")] == "medium"
    assert report.findings[0].severity == "critical"  # worst first
    evidence = next(f.evidence for f in report.findings if f.kind == "denied_spike")
    assert evidence == {"denied": 12, "calls": 14, "tools": {"search_knowledge_base": 12}}
    with pytest.raises(CriticalFindings, match="2 critical"):
        fail_on_critical(report)


def test_previous_month():
    assert previous_month(datetime(2026, 12, 1, 4, tzinfo=timezone.utc)) == (START.replace(month=11), END.replace(month=12))
    assert previous_month(datetime(2026, 1, 15, tzinfo=timezone.utc))[0] == datetime(2025, 12, 1, tzinfo=timezone.utc)


def test_tool_contract_checks_and_approvals_become_findings(settings, registry):
    from ragops.registry.models import McpToolCheck, McpToolReview

    with registry.session() as s:
        day = START + timedelta(days=3)
        s.add_all([
            McpToolCheck(ts=day, run="r1", server_url="http://t/mcp/", tool="lookup", state="unchanged", contract="passed"),
            McpToolCheck(ts=day + timedelta(days=7), run="r2", server_url="http://t/mcp/", tool="lookup", state="changed",
                         contract="failed", detail="changed since pin", diff=[{"path": "description"}],
                         probes=[{"name": "known ticket", "ok": False, "problems": ["no 'status'"]}]),
            McpToolCheck(ts=day, run="r1", server_url="http://u/mcp/", tool="weather", state="down", contract="failed",
                         detail="ConnectError"),
            McpToolCheck(ts=END + timedelta(days=1), run="later", server_url="http://v/mcp/", tool="late", state="changed"),
            McpToolCheck(ts=day, run="r1", server_url="http://w/mcp/", tool="twice", state="duplicate", contract="held",
                         detail="the server lists 'twice' 2 times"),
            McpToolCheck(ts=day, run="r1", server_url="http://x/mcp/", tool="liar", state="unchanged", contract="held",
                         detail="the tool failed its contract checks"),
            McpToolReview(ts=day, server_url="http://t/mcp/", tool="lookup", action="approve", actor="cli:bob", detail={}),
            McpToolReview(ts=day, server_url="http://t/mcp/", tool="lookup", action="diff", actor="cli:eve", detail={}),
        ])
    log(registry, CLEAN_LOG)
    report = run_audit(settings, START, END, registry=registry, permissions=Permissions.parse(CLEAN))
    kinds = {(f.kind, f.severity) for f in report.findings}
    assert kinds == {("tool_changed", "high"), ("tool_contract_failing", "high"), ("tool_down", "medium"),
                     ("tool_approved", "info"), ("tool_duplicate", "high"), ("tool_held", "high")}
    assert any("cli:bob approved a change of lookup" in f.message for f in report.findings)
