"""A real Prometheus (Debian's package) scrapes real serving apps under a little traffic, with the repo's rules.

Every alert expression and every panel query of the Grafana dashboard must return a series from what the apps
really export: this catches a renamed metric or label that promtool's unit tests (which feed their own series)
cannot. The traffic is shaped so that each alert's condition holds somewhere:
- "main": an indexed corpus with one quarantined document, a dead MCP tool (tool_failed on /v1/ask), questions
  with no answer (no_results), MCP calls allowed, denied and with a bad token;
- "limited": the same index behind a global limit of 2 a minute (rate_limited, scope global);
- "empty": no index at all (not ready, store_unavailable);
- "llm": the same index with a chat endpoint that fails (llm_unavailable);
- a target where nothing listens (a replica down).
All apps share objectives and freshness windows set tight enough to be breached at once. RagopsServingDown
(`absent(...)`) can only hold when no replica is up, so it is checked after the apps are stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time

import anyio
import httpx
import pytest
import yaml

from support import REPO, FakeLLM, free_port, live_server

DEPLOY = REPO / "deploy"
RULES = DEPLOY / "prometheus" / "rules" / "ragops.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "ragops-service.json"
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s"}
NO_ANSWER = ["Best pizza dough hydration for a wood oven?", "Which football club won the 1966 cup final?",
             "How do I knit a wool scarf with cables?"]


def alert_queries() -> dict[str, str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {f"alert {r['alert']}": r["expr"] for g in groups for r in g["rules"] if "alert" in r}


def panel_queries() -> dict[str, str]:
    def walk(panels):
        for panel in panels:
            yield panel
            yield from walk(panel.get("panels", []))

    queries = {}
    for panel in walk(json.loads(DASHBOARD.read_text())["panels"]):
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            queries[f"panel {panel['title']!r} {target['refId']}"] = expr
    return queries


@contextlib.contextmanager
def prometheus(targets: list[str], tmp_path):
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (Debian package prometheus; .ci/run installs it)")
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [{"job_name": "ragops-serving", "static_configs": [{"targets": targets}]}],
    }))
    log = (tmp_path / "prometheus.log").open("w")
    proc = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/-/ready", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, "Prometheus was not ready within 60 s"
            time.sleep(0.2)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


def _query(base: str, expr: str) -> list:
    reply = httpx.get(base + "/api/v1/query", params={"query": expr}, timeout=10).json()
    assert reply["status"] == "success", f"{expr}: {reply}"
    return reply["data"]["result"]


def _await_series(base: str, queries: dict[str, str], deadline_s: float) -> None:
    """Poll until every query has returned a series at least once."""
    pending = dict(queries)
    deadline = time.monotonic() + deadline_s
    while pending and time.monotonic() < deadline:
        for name, expr in list(pending.items()):
            if _query(base, expr):
                del pending[name]
        time.sleep(0.5)
    assert not pending, "no series within %d s for:\n%s" % (deadline_s, "\n".join(f"{k}: {v}" for k, v in pending.items()))


def _mcp_call(url: str, token: str, tool: str, arguments: dict) -> None:
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    async def call():
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
        async with http, Client(streamable_http_client(url, http_client=http)) as client:
            await client.call_tool(tool, arguments)

    anyio.run(call)


class Traffic:
    """A loop of requests that gives every app its share, until stopped; bounded by the test's deadline."""

    def __init__(self, urls: dict[str, str]):
        self.urls = urls
        self.stop = threading.Event()
        self.statuses: dict[str, set[int]] = {}
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _post(self, http, app: str, path: str, question: str) -> None:
        reply = http.post(self.urls[app] + path, json={"question": question})
        self.statuses.setdefault(f"{app} {path}", set()).add(reply.status_code)

    def _run(self) -> None:
        main_mcp = self.urls["main"] + "/mcp"
        with httpx.Client(timeout=30) as http:
            while not self.stop.is_set():
                self._post(http, "main", "/v1/search", "How is a mass delete blocked?")
                for question in NO_ANSWER:
                    self._post(http, "main", "/v1/search", question)
                self._post(http, "main", "/v1/ask", "What does the refresh DAG do?")
                self._post(http, "limited", "/v1/search", "How is a mass delete blocked?")
                self._post(http, "limited", "/v1/search", "Where do reports go?")
                self._post(http, "empty", "/v1/search", "How is a mass delete blocked?")
                self._post(http, "llm", "/v1/ask", "What blocks a mass delete?")
                for _ in range(3):  # a bad token: refused before any tool runs, counted for client "unknown"
                    http.post(main_mcp, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                              headers={"Authorization": "Bearer not-a-token", "Accept": "application/json"})
                _mcp_call(main_mcp, "reader-token", "search_knowledge_base", {"query": "guards", "k": 2})
                with contextlib.suppress(Exception):  # outside the reader's grant: a ToolError, logged as denied
                    _mcp_call(main_mcp, "reader-token", "get_document", {"uri": "file:///x"})
                time.sleep(0.1)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=60)


def test_every_alert_and_panel_query_returns_a_series(indexed, corpus, embedder, tmp_path):
    from ragops.answer.llm import OpenAIChatModel
    from ragops.answer.pipeline import AnswerService
    from ragops.answer.tools import ToolConfig
    from ragops.audit.permissions import hash_token
    from ragops.ingest.refresh import Refresher
    from serving.app import create_app

    if shutil.which("prometheus") is None:
        pytest.skip("prometheus is not installed (Debian package prometheus; .ci/run installs it)")
    (corpus / "empty.md").write_text("")
    Refresher(indexed, embedder=embedder).run()  # quarantines the empty document
    permissions = tmp_path / "mcp-permissions.yaml"
    permissions.write_text(json.dumps({"clients": [
        {"name": "reader", "token_sha256": hash_token("reader-token"), "tools": ["search_knowledge_base"]}]}))
    base = indexed.model_copy(update={
        "mcp_permissions": permissions, "status_metrics_interval_s": 1.0, "rate_limit": "100000/minute",
        "rate_limit_global": "100000/minute", "slo_p95_latency_ms": 0.001, "freshness_refresh_hours": 0.0001})
    fake_llm = FakeLLM()
    fake_llm.mode = "error"
    dead_tool = ToolConfig(url=f"http://127.0.0.1:{free_port()}/mcp/", tool="search", timeout_s=2.0)
    apps = {
        "main": (base, dict(tools=[dead_tool])),
        "limited": (base.model_copy(update={"rate_limit_global": "2/minute"}), {}),
        "empty": (base.model_copy(update={"home": tmp_path / "empty-home"}), {}),
        "llm": (base, dict(chat_model=OpenAIChatModel(fake_llm.base_url, "test-model", max_retries=0))),
    }
    try:
        with contextlib.ExitStack() as servers:
            urls = {}
            for name, (settings, extra) in apps.items():
                service = AnswerService(settings, embedder=embedder, **extra)
                app = create_app(settings, service=service, tools=extra.get("tools"))
                urls[name] = servers.enter_context(live_server(app))
            targets = [u.removeprefix("http://") for u in urls.values()] + [f"127.0.0.1:{free_port()}"]
            with prometheus(targets, tmp_path) as prom:
                live = {k: v for k, v in (alert_queries() | panel_queries()).items() if "absent(" not in v}
                with Traffic(urls) as traffic:
                    _await_series(prom, live, deadline_s=240)
                assert traffic.statuses["empty /v1/search"] == {503}
                assert traffic.statuses["llm /v1/ask"] == {503} and 429 in traffic.statuses["limited /v1/search"]

                rules = httpx.get(prom + "/api/v1/rules", timeout=10).json()["data"]["groups"]
                broken = [(r["name"], r["lastError"]) for g in rules for r in g["rules"] if r.get("health") != "ok"]
                assert not broken and sum(len(g["rules"]) for g in rules) == 28
                pending = {a["labels"]["alertname"]: a for a in httpx.get(prom + "/api/v1/alerts").json()["data"]["alerts"]}
                assert pending["RagopsEvaluationOverdue"]["annotations"]["summary"] == "No evaluation has succeeded yet"

                servers.close()  # every replica gone: only now can RagopsServingDown's absent() hold
                _await_series(prom, {k: v for k, v in alert_queries().items() if "absent(" in v}, deadline_s=60)
    finally:
        fake_llm.close()
