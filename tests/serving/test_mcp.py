"""The MCP server at /mcp over streamable HTTP, with a real MCP client: granted, unauthenticated, out of scope."""

import json

import httpx
import pytest
from sqlalchemy import select

from support import corpus_dir, live_server, rows, samples
from ragops.audit.permissions import hash_token
from ragops.registry import Registry
from ragops.registry.models import McpAccessLog


def _permissions(tmp_path):
    """Two clients: `reader` may search and read documents, `doc-only` may only read them."""
    permissions = tmp_path / "mcp-permissions.yaml"
    permissions.write_text(json.dumps({"clients": [
        {"name": "reader", "token_sha256": hash_token("reader-token"), "tools": ["search_knowledge_base", "get_document"]},
        {"name": "doc-only", "token_sha256": hash_token("doc-token"), "tools": ["get_document"]},
    ]}))
    return permissions


@pytest.fixture
def mcp_url(indexed, embedder, tmp_path):
    permissions = _permissions(tmp_path)
    from ragops.answer.pipeline import AnswerService
    from serving.app import create_app

    settings = indexed.model_copy(update={"mcp_permissions": permissions})
    app = create_app(settings, service=AnswerService(settings, embedder=embedder))
    with live_server(app) as url:
        yield url + "/mcp", app, settings


async def _call(url, token, tool, arguments, scheme="Bearer"):
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    http = create_mcp_http_client(headers={"Authorization": f"{scheme} {token}"})
    async with http, Client(streamable_http_client(url, http_client=http)) as client:
        tools = [t.name for t in (await client.list_tools()).tools]
        return tools, await client.call_tool(tool, arguments)


def _text(result):
    return "\n".join(getattr(c, "text", "") for c in result.content)


@pytest.mark.anyio
async def test_mcp_access_control_and_access_log(mcp_url):
    url, app, settings = mcp_url
    tools, result = await _call(url, "reader-token", "search_knowledge_base", {"query": "mass delete guard", "k": 2})
    assert {"search_knowledge_base", "get_document"} <= set(tools)
    assert not result.is_error and "refresh.md" in _text(result)

    doc_uri = (corpus_dir(settings) / "notes.txt").as_uri()
    _, document = await _call(url, "reader-token", "get_document", {"uri": doc_uri})
    assert not document.is_error and "outbox" in _text(document)
    _, lower = await _call(url, "reader-token", "get_document", {"uri": doc_uri}, scheme="bearer")  # RFC 7235
    assert not lower.is_error and "outbox" in _text(lower)

    async with httpx.AsyncClient() as http:
        anonymous = await http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                                    headers={"Accept": "application/json, text/event-stream"})
        wrong = await http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                                headers={"Authorization": "Bearer not-a-token", "Accept": "application/json"})
        wrong_lower = await http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                                      headers={"Authorization": "bearer not-a-token", "Accept": "application/json"})
    assert anonymous.status_code == wrong.status_code == wrong_lower.status_code == 401

    _, denied = await _call(url, "doc-token", "search_knowledge_base", {"query": "guards"})
    assert denied.is_error and "permission denied" in _text(denied) and "not granted" in _text(denied)

    app.state.events.flush()
    registry = Registry(settings.registry_url)
    with registry.session() as s:
        rows = [(r.client, r.tool, r.decision, r.status) for r in s.scalars(select(McpAccessLog).order_by(McpAccessLog.id))]
        hashes = [r.args_hash for r in s.scalars(select(McpAccessLog))]
    assert ("reader", "search_knowledge_base", "allowed", "ok") in rows
    assert ("reader", "get_document", "allowed", "ok") in rows
    assert ("unknown", "-", "denied", "unauthenticated") in rows  # a token that is not in the permissions file
    assert ("anonymous", "-", "denied", "unauthenticated") in rows  # no token at all
    assert ("doc-only", "search_knowledge_base", "denied", "denied") in rows
    assert all("token" not in str(row) for row in rows) and any(len(h) == 32 for h in hashes)

    metrics = samples(httpx.get(url.removesuffix("/mcp") + "/metrics").text)  # by client and decision, bounded names
    calls = {dict(labels)["client"] + " " + dict(labels)["tool"] + " " + dict(labels)["decision"]: value
             for (name, labels), value in metrics.items() if name == "ragops_mcp_calls_total"}
    assert calls["reader search_knowledge_base allowed"] == 1 and calls["reader get_document allowed"] == 2
    assert calls["doc-only search_knowledge_base denied"] == 1
    assert calls["unknown - denied"] == 2 and calls["anonymous - denied"] == 1  # a lower-case scheme is a token


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_mcp_over_stdio(indexed):
    """`ragops mcp` serves the same tools over stdio to a local client that starts it."""
    import os
    import sys

    from mcp import Client, StdioServerParameters

    env = dict(os.environ, RAGOPS_HOME=str(indexed.home), RAGOPS_SOURCE=indexed.source)
    params = StdioServerParameters(command=sys.executable, args=["-m", "ragops", "mcp"], env=env)
    async with Client(params) as client:
        result = await client.call_tool("search_knowledge_base", {"query": "Slack outbox", "k": 1})
    assert not result.is_error and "notes.txt" in _text(result)


@pytest.mark.anyio
async def test_a_token_issued_while_the_server_runs_works_at_once_and_revoking_stops_it(indexed, embedder, tmp_path):
    """`ragops token issue` edits the file the running server reads: no restart between issuing and using."""
    from ragops.audit.tokens import issue_token, revoke_token
    from ragops.answer.pipeline import AnswerService
    from serving.app import create_app

    permissions = tmp_path / "mcp-permissions.yaml"
    permissions.write_text("clients: []\n")
    settings = indexed.model_copy(update={"mcp_permissions": permissions})
    app = create_app(settings, service=AnswerService(settings, embedder=embedder))
    with live_server(app) as base:
        url = base + "/mcp"
        issued = issue_token(permissions, "support-bot", ["search_knowledge_base"])
        assert issued.token not in permissions.read_text() and hash_token(issued.token) in permissions.read_text()
        _, result = await _call(url, issued.token, "search_knowledge_base", {"query": "mass delete guard", "k": 1})
        assert not result.is_error and "refresh.md" in _text(result)
        revoke_token(permissions, "support-bot")
        async with httpx.AsyncClient() as http:
            refused = await http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                                      headers={"Authorization": f"Bearer {issued.token}", "Accept": "application/json"})
        assert refused.status_code == 401
        permissions.write_text("clients: [ {broken")  # a broken edit keeps the last good grants, never opens access
        async with httpx.AsyncClient() as http:
            still = await http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                                    headers={"Authorization": f"Bearer {issued.token}", "Accept": "application/json"})
        assert still.status_code == 401


def _log_rows(settings):
    return rows(settings, McpAccessLog, McpAccessLog.seq)


@pytest.mark.anyio
async def test_every_call_is_logged_unknown_tools_invalid_arguments_and_long_ids(mcp_url):
    """Finding 3: unknown tools and over-long JSON-RPC ids used to leave no access-log row."""
    url, app, settings = mcp_url
    _, unknown = await _call(url, "reader-token", "drop_all_tables", {})
    assert unknown.is_error  # not granted: denied and logged
    _, invalid = await _call(url, "reader-token", "search_knowledge_base", {"query": "guards", "k": "many"})
    assert invalid.is_error
    long_id = "j" * 300
    async with httpx.AsyncClient() as http:
        reply = await http.post(url, json={"jsonrpc": "2.0", "id": long_id, "method": "tools/call",
                                           "params": {"name": "search_knowledge_base", "arguments": {"query": "guards"}}},
                                headers={"Authorization": "Bearer reader-token", "Accept": "application/json, text/event-stream",
                                         "MCP-Protocol-Version": "2025-06-18"})
    assert reply.status_code == 200 and reply.json()["id"] == long_id
    assert app.state.events.flush()
    rows = [(r.tool, r.decision, r.status, r.reason, r.request_id) for r in _log_rows(settings)]
    assert ("drop_all_tables", "denied", "denied") in [r[:3] for r in rows]
    invalid_row = next(r for r in rows if r[0] == "search_knowledge_base" and r[2] == "error")
    assert "invalid arguments: k" in invalid_row[3]
    long_row = next(r for r in rows if r[4].startswith("j" * 40))
    assert long_row[:3] == ("search_knowledge_base", "allowed", "ok") and len(long_row[4]) == 64


@pytest.fixture
def rollout_with_candidate(indexed, embedder, tmp_path):
    """The live index of the small corpus, and a candidate release whose collection holds one secret document."""
    from ragops.rollout.machine import Rollout
    from ragops.ingest.candidate import build_candidate, candidate_name
    from ragops.registry import Registry
    from ragops.releases import create_release

    other = tmp_path / "candidate-corpus"
    other.mkdir()
    (other / "secret.md").write_text("# Zebra\n\nThe zebra quartz protocol is only in the candidate release.\n")
    build = build_candidate(indexed, source=other.as_uri(), embedder=embedder)
    release = create_release(Registry(indexed.registry_url), candidate_name(build), build.index_version_id, {}, "test")
    Rollout(indexed).start(release.name, "test")
    return release.name


@pytest.mark.anyio
async def test_grants_choose_the_collection_read(indexed, embedder, tmp_path, rollout_with_candidate):
    """Finding 4: a client granted only `candidate` reads the candidate and can never read `live`."""
    from ragops.answer.pipeline import AnswerService
    from serving.app import create_app

    permissions = tmp_path / "grants.yaml"
    tools = ["search_knowledge_base", "get_document"]
    permissions.write_text(json.dumps({"clients": [
        {"name": "cand-only", "token_sha256": hash_token("cand"), "tools": tools, "collections": ["candidate"]},
        {"name": "live-only", "token_sha256": hash_token("live"), "tools": tools, "collections": ["live"]},
    ]}))
    settings = indexed.model_copy(update={"mcp_permissions": permissions})
    live_doc = (corpus_dir(settings) / "notes.txt").as_uri()
    app = create_app(settings, service=AnswerService(settings, embedder=embedder))
    with live_server(app) as base:
        url = base + "/mcp"
        _, found = await _call(url, "cand", "search_knowledge_base", {"query": "zebra quartz", "collection": "candidate"})
        assert not found.is_error and "secret.md" in _text(found) and "notes.txt" not in _text(found)
        for arguments in ({"query": "outbox"}, {"query": "outbox", "collection": "live"},
                          {"query": "outbox", "collection": ""},
                          {"query": "outbox", "collection": rollout_with_candidate.replace("reindex", "live")}):
            _, denied = await _call(url, "cand", "search_knowledge_base", arguments)
            assert denied.is_error and "permission denied" in _text(denied)
        _, denied = await _call(url, "cand", "get_document", {"uri": live_doc})
        assert denied.is_error and "permission denied" in _text(denied)
        _, missing = await _call(url, "cand", "get_document", {"uri": live_doc, "collection": "candidate"})
        assert missing.is_error and "outbox" not in _text(missing)  # the live document is not in the candidate

        _, live = await _call(url, "live", "search_knowledge_base", {"query": "zebra quartz protocol", "k": 10})
        assert not live.is_error and "secret.md" not in _text(live)
        _, document = await _call(url, "live", "get_document", {"uri": live_doc})
        assert not document.is_error and "outbox" in _text(document)
        _, denied = await _call(url, "live", "search_knowledge_base", {"query": "zebra", "collection": "candidate"})
        assert denied.is_error and "permission denied" in _text(denied)


@pytest.mark.anyio
async def test_with_the_audit_key_every_logged_call_carries_its_mac(indexed, embedder, tmp_path):
    """The app MACs access-log rows with the key from its 0600 file; a key file others may read stops it starting."""
    from ragops.answer.pipeline import AnswerService
    from ragops.audit.anchor import signing_key, verify_anchored
    from ragops.audit.chain import row_mac
    from ragops.errors import ConfigError
    from serving.app import create_app

    permissions = tmp_path / "mcp-permissions.yaml"
    permissions.write_text(json.dumps({"clients": [
        {"name": "reader", "token_sha256": hash_token("reader-token"), "tools": ["search_knowledge_base"]}]}))
    key_file = tmp_path / "audit.key"
    key_file.write_text("an audit key of forty characters, or so\n")
    key_file.chmod(0o640)
    settings = indexed.model_copy(update={"mcp_permissions": permissions, "audit_signing_key_file": key_file})
    with pytest.raises(ConfigError, match="chmod 600"):
        create_app(settings, service=AnswerService(settings, embedder=embedder))
    key_file.chmod(0o600)
    app = create_app(settings, service=AnswerService(settings, embedder=embedder))
    with live_server(app) as base:
        await _call(base + "/mcp", "reader-token", "search_knowledge_base", {"query": "guards", "k": 1})
        await _call(base + "/mcp", "reader-token", "get_document", {"uri": "file:///etc/passwd"})
        assert app.state.events.flush()
    key = signing_key(settings)
    rows = _log_rows(settings)
    assert [r.decision for r in rows] == ["allowed", "denied"]
    assert all(r.row_mac == row_mac(key, r.row_hash) for r in rows)
    registry = Registry(settings.registry_url)
    with registry.session() as s:
        assert verify_anchored(s, key, []).macs_from == 1
    registry.dispose()


@pytest.fixture
def limited_mcp(indexed, embedder, tmp_path):
    """An app whose MCP clients may make 3 calls an hour each, and each address 5 (the /v1 address limit)."""
    permissions = _permissions(tmp_path)
    from ragops.answer.pipeline import AnswerService
    from serving.app import create_app

    settings = indexed.model_copy(update={"mcp_permissions": permissions, "rate_limit_mcp": "3/hour",
                                          "rate_limit_address": "5/hour"})
    service = AnswerService(settings, embedder=embedder)
    searches = []
    search = service.search

    async def counted(*args, **kwargs):
        searches.append(args)
        return await search(*args, **kwargs)

    service.search = counted
    app = create_app(settings, service=service)
    with live_server(app) as url:
        yield url, app, settings, searches


def _rate_limited(metrics_text: str) -> dict[str, float]:
    return {dict(labels)["scope"]: value for (name, labels), value in samples(metrics_text).items()
            if name == "ragops_rate_limited_total"}


@pytest.mark.anyio
async def test_mcp_calls_count_against_the_token_and_the_address_like_v1(limited_mcp):
    """Finding 2: MCP calls had no rate limit. A token's 4th call in the hour is refused, then the address's 6th,
    and the address bucket is the one /v1 counts: its next /v1 request gets 429."""
    base, app, settings, searches = limited_mcp
    url = base + "/mcp"
    for _ in range(3):
        _, ok = await _call(url, "reader-token", "search_knowledge_base", {"query": "mass delete guard", "k": 2})
        assert not ok.is_error
    _, refused = await _call(url, "reader-token", "search_knowledge_base", {"query": "mass delete guard"})
    assert refused.is_error and "rate limited, retry after" in _text(refused) and len(searches) == 3
    retry_after = int(_text(refused).split("retry after ")[1].split(" s")[0])
    assert 1 <= retry_after <= 3600

    doc_uri = (corpus_dir(settings) / "notes.txt").as_uri()
    outcomes = [(await _call(url, "doc-token", "get_document", {"uri": doc_uri}))[1].is_error for _ in range(3)]
    assert outcomes == [False, False, True]  # the address has spent 5: 3 searches, 2 reads (the refused call none)
    async with httpx.AsyncClient() as http:
        v1 = await http.post(base + "/v1/search", json={"question": "guards"})
        metrics = (await http.get(base + "/metrics")).text
    assert v1.status_code == 429
    assert _rate_limited(metrics) == {"mcp_token": 1, "mcp_address": 1, "caller": 1}

    assert app.state.events.flush()
    rows = [(r.client, r.tool, r.status, r.reason) for r in _log_rows(settings)]
    assert ("reader", "search_knowledge_base", "rate_limited", "rate limited (mcp_token) from 127.0.0.1") in rows
    assert ("doc-only", "get_document", "rate_limited", "rate limited (mcp_address) from 127.0.0.1") in rows


@pytest.mark.anyio
async def test_mcp_arguments_have_the_bounds_of_v1_and_are_refused_before_any_work(limited_mcp):
    base, app, settings, searches = limited_mcp
    url = base + "/mcp"
    app.state.limiter.enabled = False
    cases = [({"query": "q" * 2001}, "query"), ({"query": ""}, "query"), ({"query": "guards", "k": 21}, "k"),
             ({"query": "guards", "k": 0}, "k"), ({"query": "guards", "collection": "c" * 129}, "collection")]
    for arguments, field in cases:
        _, result = await _call(url, "reader-token", "search_knowledge_base", arguments)
        assert result.is_error and field in _text(result), arguments
    _, long_uri = await _call(url, "reader-token", "get_document", {"uri": "file:///" + "u" * 2048})
    assert long_uri.is_error and "uri" in _text(long_uri)
    assert searches == []  # refused before the search ran
    _, at_bound = await _call(url, "reader-token", "search_knowledge_base", {"query": "guard " * 333 + "gu", "k": 20})
    assert not at_bound.is_error and len(searches) == 1  # exactly 2,000 characters, as /v1 accepts


@pytest.mark.anyio
async def test_a_flood_of_failed_authentications_writes_a_row_per_kind_and_a_count(mcp_url):
    """Finding 2: 200 wrong-token calls wrote 200 access-log rows. Now each kind of failure gets its first row at once
    and its repeats one summary row with their count; the metric still counts every one."""
    url, app, settings = mcp_url
    async with httpx.AsyncClient() as http:
        for i in range(30):
            reply = await http.post(url, json={"jsonrpc": "2.0", "id": i, "method": "tools/list"},
                                    headers={"Authorization": f"Bearer wrong-{i}", "Accept": "application/json"})
            assert reply.status_code == 401
        for i in range(4):
            reply = await http.post(url, json={"jsonrpc": "2.0", "id": i, "method": "tools/list"},
                                    headers={"Accept": "application/json"})
            assert reply.status_code == 401
    assert app.state.events.flush()
    first = [(r.client, r.reason) for r in _log_rows(settings) if r.status == "unauthenticated"]
    assert first == [("unknown", "unknown token from 127.0.0.1"), ("anonymous", "no bearer token from 127.0.0.1")]

    app.state.refusals.flush()  # the window's end
    assert app.state.events.flush()
    rows = [(r.client, r.reason) for r in _log_rows(settings) if r.status == "unauthenticated"]
    assert len(rows) == 4 and rows[:2] == first
    assert "unknown token from 127.0.0.1: 29 more in the 60 s from" in rows[2][1] + rows[3][1]
    assert "no bearer token from 127.0.0.1: 3 more in the 60 s from" in rows[2][1] + rows[3][1]
    metrics = samples(httpx.get(url.removesuffix("/mcp") + "/metrics").text)
    assert metrics[("ragops_mcp_calls_total", (("client", "unknown"), ("decision", "denied"), ("tool", "-")))] == 30
