"""Helpers shared by the tests: fake peers (an OpenAI-compatible LLM, in fake_llm.py), a live uvicorn server, registry reads."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "dags"

from fake_llm import FakeLLM  # noqa: E402,F401  (re-exported: the tests import it from here)


@contextmanager
def throwaway_database(base_url: str, prefix: str, template: str | None = None) -> Iterator[str]:
    """A new database on the server of `base_url` (a copy of the database `template` when given), dropped (even with
    connections left open) afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    try:
        yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def serve_in_thread(server) -> threading.Thread:
    """Serve a socketserver on a daemon thread. It polls for shutdown every 0.05 s instead of 0.5 s: shutdown() waits
    for the next poll, and a test's teardown would wait with it."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return thread


def corpus_dir(settings) -> Path:
    """The folder a settings' file:// source names."""
    from urllib.parse import urlparse

    return Path(urlparse(settings.source).path)


def stop_group(proc, grace_s: float = 30.0) -> None:
    """Stop a process started with start_new_session=True and its children: SIGTERM to its group (a clean shutdown),
    SIGKILL if it is still there after `grace_s`. Only the group this test started."""
    import os
    import signal
    import subprocess

    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(app, **config):
    """Run an ASGI app under uvicorn (with these extra Config options) in a thread on 127.0.0.1 and a free port;
    yields the base URL."""
    import uvicorn

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # log_config=None: uvicorn would otherwise run logging.config.dictConfig, which closes every handler of the
    # process, pytest's capture handlers of the running test among them (a later test then fails on a closed file)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", log_config=None,
                                           timeout_graceful_shutdown=2, **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def rows(settings, model, order=None, **where):
    """Every row of one registry table, in `order` (default: by id), filtered by column equality."""
    from sqlalchemy import select

    from ragops.registry import Registry

    registry = Registry(settings.registry_url)
    with registry.session() as s:
        query = select(model).order_by(order if order is not None else model.id)
        for key, value in where.items():
            query = query.where(getattr(model, key) == value)
        found = s.scalars(query).all()
    registry.dispose()
    return found


def events(settings, **where):
    from ragops.registry.models import RequestEvent

    return rows(settings, RequestEvent, **where)


def task_states(run) -> dict:
    """{task_id: state} of a DAG run (unmapped tasks)."""
    return {ti.task_id: ti.state for ti in run.get_task_instances()}


def samples(exposition: str) -> dict[tuple, float]:
    """Prometheus text exposition -> {(name, (("label", "value"), ...)): value}, labels sorted by name."""
    from prometheus_client.parser import text_string_to_metric_families

    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(exposition) for s in family.samples}


def served_latency(metrics: str, endpoint: str) -> tuple[dict, float]:
    """(requests counted by status, answers observed in the latency histogram) for one endpoint."""
    found = samples(metrics)
    counted = {dict(labels)["status"]: value for (name, labels), value in found.items()
               if name == "ragops_requests_total" and dict(labels)["endpoint"] == endpoint}
    observed = sum(value for (name, labels), value in found.items()
                   if name == "ragops_request_latency_seconds_count" and dict(labels)["endpoint"] == endpoint)
    return counted, observed


async def hanging_lookup(query: str) -> str:
    """An MCP tool that answers after every test's tool timeout."""
    import asyncio

    await asyncio.sleep(30)
    return "too late"


def failing_lookup(query: str) -> str:
    """An MCP tool that raises, as a tool whose upstream is down does."""
    from mcp.server.mcpserver.exceptions import ToolError

    raise ToolError("upstream database is down")


def flaky_tool_server() -> "ToolServer":
    """A real MCP server with tool `hangs` (never in time) and tool `fails` (raises a ToolError)."""
    server = ToolServer("flaky")
    server.define(hanging_lookup, "hangs", "Look up, slowly.")
    server.define(failing_lookup, "fails", "Look up, and fail.")
    return server


class ToolServer:
    """A real MCP server (the SDK's MCPServer over stateless streamable HTTP) whose tools a test redefines mid-run.

    `calls` counts the tool calls it served, so a test can prove that a held tool was never called.
    """

    def __init__(self, name: str = "tickets"):
        from mcp.server.mcpserver import MCPServer

        self.server = MCPServer(name)
        self.calls = 0

    def define(self, fn, name: str, description: str) -> None:
        """(Re)register `fn` as tool `name`; its signature becomes the input schema, as with @server.tool()."""
        server_fn = fn

        async def counted(*args, **kwargs):
            self.calls += 1
            result = server_fn(*args, **kwargs)
            return await result if hasattr(result, "__await__") else result

        import functools
        import inspect

        wrapper = functools.wraps(fn)(counted)
        wrapper.__signature__ = inspect.signature(fn)
        wrapper.__name__ = wrapper.__qualname__ = name  # the SDK titles the schemas after the function
        if any(t.name == name for t in self.server._tool_manager.list_tools()):
            self.server.remove_tool(name)
        self.server.add_tool(wrapper, name=name, description=description)

    @contextmanager
    def running(self):
        """Serve on 127.0.0.1 and a free port; yields the MCP endpoint URL."""
        from contextlib import asynccontextmanager

        from starlette.applications import Starlette
        from starlette.routing import Mount

        inner = self.server.streamable_http_app(streamable_http_path="/", stateless_http=True, json_response=True)

        @asynccontextmanager
        async def lifespan(app):
            async with self.server.session_manager.run():
                yield

        with live_server(Starlette(routes=[Mount("/mcp", inner)], lifespan=lifespan)) as url:
            yield url + "/mcp/"


def pin_tools(settings, tools) -> None:
    """Approve connected MCP tools as an operator would (`ragops tools pin`), so the app calls them."""
    from dataclasses import asdict

    from ragops.mcp_tools.review import pin_tools as pin
    from ragops.registry import Registry

    registry = Registry(settings.registry_url)
    pin(settings.model_copy(update={"mcp_tools": [asdict(t) for t in tools]}), registry, [], "test")
    registry.dispose()


def populate_registry(settings, embedder, now) -> dict:
    """A registry as a working platform leaves it, through the real code paths where they are cheap: a refresh with
    one quarantined file, a blue/green candidate in a canary with a gate decision, evaluation runs (one regressed),
    24 hours of request events, health probes and an MCP audit whose client name is hostile HTML.
    Returns the figures that a summary of it must show."""
    from datetime import timedelta

    from ragops.audit.analysis import run_audit
    from ragops.audit.permissions import Permissions
    from ragops.ingest.refresh import Refresher
    from ragops.monitoring.events import EventWriter
    from ragops.monitoring.health import Probe, record
    from ragops.notify import build_notifier
    from ragops.registry import Registry
    from ragops.registry.models import EvalRun
    from ragops.rollout.machine import Rollout
    from ragops.ingest.candidate import build_candidate, candidate_name
    from ragops.releases import create_release

    registry = Registry(settings.registry_url)
    (corpus_dir(settings) / "broken.md").write_bytes(b"\x00\x01\x02")
    refresh = Refresher(settings, registry, embedder=embedder).run()
    build = build_candidate(settings, registry=registry, embedder=embedder)
    candidate = create_release(registry, candidate_name(build), build.index_version_id, {}, "test")
    rollout = Rollout(settings, registry, notifier=build_notifier(settings))
    rollout.start(candidate.name, "cli:tester")
    rollout.step(now=now)
    with registry.session() as s:
        s.add(EvalRun(testset="old.jsonl", testset_hash="0" * 64, release="live", embedding_model="m", generator="g",
                      n=3, metrics={"hit_rate": 0.1}, duration_s=1.0, created_at=now - timedelta(days=60)))
        for i, (hit, recall) in enumerate([(0.8, 0.5), (0.85, 0.55), (0.6, 0.52), (0.82, 0.56)]):
            regressed = i == 2
            s.add(EvalRun(testset="bundled.jsonl", testset_hash="1" * 64, release="live", embedding_model="m",
                          generator="extractive", n=12, metrics={"hit_rate": hit, "answer_token_recall": recall},
                          comparison={"regressed": regressed, "drops": [{"metric": "hit_rate"}] if regressed else [],
                                      "below_floor": []},
                          status="regressed" if regressed else "ok", duration_s=1.0,
                          created_at=now - timedelta(days=4 - i)))
    writer = EventWriter(registry)
    for i in range(40):  # one request every 30 minutes over the last 20 hours
        failed, fallback = i % 10 == 0, "no_results" if i % 4 == 1 else None
        writer.record("request", ts=now - timedelta(minutes=30 * i + 1), request_id=str(i), endpoint="/v1/ask",
                      user_hash="u", variant="stable", release_id=1, latency_ms=100.0 + i, status=503 if failed else 200,
                      fallback="store_unavailable" if failed else fallback, chunk_ids=[])
    writer.close()
    record(registry, [Probe("registry", True, 1.0, "reachable"), Probe("serving", False, 2.0, "HTTP 503 index")],
           now=now - timedelta(minutes=5))
    hostile = {"clients": [{"name": "<b>bot</b>", "token_sha256": "a" * 64, "tools": ["*"]}]}
    audit = run_audit(settings, now - timedelta(days=30), now, registry=registry, permissions=Permissions.parse(hostile))
    from ragops.registry.models import McpToolCheck

    with registry.session() as s:  # two checks of one tool (the newer counts) and a changed one with hostile text
        s.add_all([
            McpToolCheck(ts=now - timedelta(days=7), run="r1", server_url="http://tools:9000/mcp/", tool="tickets",
                         state="changed", contract="failed", diff=["old"], detail="an older check"),
            McpToolCheck(ts=now - timedelta(hours=1), run="r2", server_url="http://tools:9000/mcp/", tool="tickets",
                         state="unchanged", contract="passed", latency_ms=12.0),
            McpToolCheck(ts=now - timedelta(hours=1), run="r2", server_url="http://tools:9000/mcp/", tool="wiki",
                         state="changed", contract="none", diff=["description: now says <b>tool</b>"]),
        ])
    return {"refresh": refresh, "candidate": build, "release": candidate.name, "audit": audit, "registry": registry}


class Peer:
    """Sets the connecting address from a test-only header, so one client (one event loop) can be many peers."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        peer = dict(scope.get("headers") or []).get(b"x-test-peer")
        if scope["type"] == "http" and peer:
            scope = dict(scope, client=(peer.decode(), 40000))
        await self.app(scope, receive, send)


def index_state(settings):
    """The live index's (chunk id, document, chunk hash) rows, sorted: what a blocked refresh must leave as it was."""
    from ragops.index import open_store

    rows = open_store(settings).rows(["chunk_id", "doc_uri", "chunk_hash"])
    return sorted((r["chunk_id"], r["doc_uri"], r["chunk_hash"]) for r in rows)


CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def chromium_missing() -> str | None:
    """Why a real Chromium cannot run here, or None: Debian's chromium and chromium-driver, and selenium."""
    import os

    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        return (f"no Debian chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}); .ci/run installs them with "
                "apt-get install chromium chromium-driver")
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (requirements-dev.txt)"
    return None


def chromium(tmp_path, size: str):
    """A headless Chromium driven by selenium, its profile under `tmp_path`; the caller quits it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'chromium'}",
                 f"--window-size={size}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


AUDIT_KEY = b"k" * 32  # the audit key of the access-log tests (tests/include/ragops/audit)


def access_row(i: int, **kw) -> dict:
    """One MCP access-log row as the app writes it (every third a denial)."""
    from datetime import datetime, timezone

    return dict(ts=datetime.now(timezone.utc), client="reader", tool="search_knowledge_base",
                decision="denied" if i % 3 == 0 else "allowed", reason="granted", latency_ms=1.25 + i, status="ok",
                request_id=str(i), args_hash="a" * 32) | kw


def rehash_access_log(s) -> None:
    """The insider's tool: the digest is public, so every row is relinked and rehashed and the head moved to the end."""
    from sqlalchemy import select, update

    from ragops.audit import chain
    from ragops.registry.models import AuditChainHead, McpAccessLog

    s.flush()
    prev, seq = chain.GENESIS, 0
    for row in s.scalars(select(McpAccessLog).order_by(McpAccessLog.seq)):
        row.prev_hash, seq = prev, row.seq
        row.row_hash = prev = chain.digest(prev, {k: getattr(row, k) for k in chain.FIELDS})
    s.execute(update(AuditChainHead).values(seq=seq, head_hash=prev))


def audit_settings(settings, registry):
    """Settings on this registry with the audit key configured."""
    from pydantic import SecretStr

    return settings.model_copy(update={"database_url": registry.url, "audit_signing_key": SecretStr(AUDIT_KEY.decode())})
