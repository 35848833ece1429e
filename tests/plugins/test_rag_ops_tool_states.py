"""The connected-tools card in every state a check can leave (issue 21): each page answers 200 and shows the state."""

from datetime import datetime, timedelta, timezone

import pytest

SERVER = "http://tools:9000/mcp/"
DICT_DIFF = [{"path": "description", "kind": "changed", "was": "Look up a ticket.", "now": "Look up. <b>Mail</b> it."},
             {"path": "inputSchema.properties.text", "kind": "added", "was": None, "now": {"type": "string"}}]
HELD = "the tool failed its contract checks (last checked 2026-12-01 04:30 UTC) and awaits review"
# (tool, state, contract, diff, detail, probes, what the page must show for it)
CHECKS = [
    ("ok", "unchanged", "passed", [], "", [], "unchanged"),
    ("drifted", "changed", "held", DICT_DIFF, "changed since pin by ann", [], "description changed: "),
    ("legacy", "changed", "none", ["description: an older check stored text"], "", [], "an older check stored text"),
    ("gone", "missing", "held", [], "the server no longer lists 'gone'", [], "no longer lists"),
    ("twice", "duplicate", "held", [], "the server lists 'twice' 2 times (fingerprints a, b): drift", [], "2 times"),
    ("new", "unpinned", "held", [], "not approved yet: run `ragops tools pin`", [], "not approved yet"),
    ("broken", "down", "failed", [], "ConnectError: connection refused", [], "connection refused"),
    ("failing", "unchanged", "failed", [], "", [{"name": "a known ticket", "ok": False, "latency_ms": 3.0,
                                                 "problems": ["the result does not contain 'status'"]}], "status"),
    ("held", "unchanged", "held", [], HELD, [], "awaits review"),
    ("liar", "unchanged", "failed", [], "a sampled real call broke the tool's contract",
     [{"name": "live sample", "ok": False, "latency_ms": 4.0, "problems": ["the result does not match /status/"]}],
     "live sample"),
]


@pytest.fixture
def page_env(settings, monkeypatch):
    """A registry holding one newest check per state, and one connected tool that was never checked."""
    import json

    from ragops.registry import Registry
    from ragops.registry.models import McpToolCheck

    settings.ensure_home()
    registry = Registry(settings.registry_url)
    now = datetime.now(timezone.utc)
    with registry.session() as s:
        s.add_all(McpToolCheck(ts=now - timedelta(hours=1), run="r", server_url=SERVER, tool=tool, state=state,
                               contract=contract, diff=diff, detail=detail, probes=probes,
                               latency_ms=12.0 if contract == "passed" else None)
                  for tool, state, contract, diff, detail, probes, _ in CHECKS)
    registry.dispose()
    tools = [{"url": SERVER, "tool": t[0]} for t in CHECKS] + [{"url": SERVER, "tool": "fresh"}]
    monkeypatch.setenv("RAGOPS_HOME", str(settings.home))
    monkeypatch.setenv("RAGOPS_SOURCE", settings.source)
    monkeypatch.setenv("RAGOPS_MCP_TOOLS", json.dumps(tools))
    return settings


@pytest.fixture
def page(page_env, monkeypatch):
    """GET /ragops/ through the plugin's real FastAPI app; only Airflow's login and its DAG-run lookup stand aside."""
    from fastapi.testclient import TestClient

    import ragops_ops_app

    monkeypatch.setattr(ragops_ops_app, "latest_runs", lambda dag_ids: {})
    app = ragops_ops_app.create_app()
    for dependency in app.router.dependencies:
        app.dependency_overrides[dependency.dependency] = lambda: None
    with TestClient(app) as client:
        reply = client.get("/")
    assert reply.status_code == 200, reply.text[:500]
    html = reply.text
    return html[html.index('id="tools"'):]


def _row(card: str, tool: str) -> str:
    start = card.index(f"<tr><td>{tool}</td>")
    return card[start:card.index("</tr>", start)]


@pytest.mark.parametrize("tool,state,contract,shown", [(c[0], c[1], c[2], c[6]) for c in CHECKS])
def test_every_check_state_is_shown(page, tool, state, contract, shown):
    row = _row(page, tool)
    assert f">{state}<" in row and f">{contract}<" in row and shown in row, row
    assert ("state-up" in row) == (state == "unchanged" and contract == "passed")  # only a passing tool looks well


def test_a_changed_tool_shows_its_dict_diff_as_text(page):
    row = _row(page, "drifted")
    assert "description changed: &quot;Look up a ticket.&quot; → &quot;Look up. &lt;b&gt;Mail&lt;/b&gt; it.&quot;" in row
    assert "<b>Mail</b>" not in row and "inputSchema.properties.text added: null → {&quot;type&quot;: " in row


def test_a_connected_tool_never_checked_is_shown(page):
    row = _row(page, "fresh")
    assert "never checked" in row
