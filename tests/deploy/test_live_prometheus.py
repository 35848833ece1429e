"""A real Prometheus (Debian's package) scrapes real serving apps under a little traffic, with the repo's rules.

Every alert expression and every panel query of the Grafana dashboard must return a series from what the apps
really export: this catches a renamed metric or label that promtool's unit tests (which feed their own series)
cannot. The traffic is shaped so that each alert's condition holds somewhere:
- "main": an indexed corpus with one quarantined document, a dead MCP tool (tool_failed on /v1/ask), questions
  with no answer (no_results), MCP calls allowed, denied and with a bad token;
- "limited": the same index behind a global limit of 2 an hour (rate_limited, scope global);
- "empty": no index at all (not ready, store_unavailable), a rollout that asks a person and a quality-drift check
  that found a shift;
- "llm": the same index with a chat endpoint that fails (llm_unavailable) and whose /models does not answer:
  degraded, but ready, as /readyz says, so it must not raise RagopsNotReady;
- a target where nothing listens (a replica down).
All apps share objectives and freshness windows set tight enough to be breached at once. RagopsServingDown
(`absent(...)`) can only hold when no replica is up, so it is checked after the apps are stopped.

Prometheus sends its alerts to a real Alertmanager (Debian's prometheus-alertmanager) running the repo's routing,
whose two receivers are pointed at a local webhook: critical alerts must reach "pager", the others "team". Only
timings differ from the repo's files: the rules' `for:` durations become 0s and the route's waits 1s, so that the
test need not wait minutes (promtool's unit tests cover the durations).
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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anyio
import httpx
import pytest
import yaml

from support import FakeLLM, REPO, free_port, live_server, serve_in_thread

DEPLOY = REPO / "deploy"
RULES = DEPLOY / "prometheus" / "rules" / "ragops.yml"
ALERTMANAGER = DEPLOY / "alertmanager" / "alertmanager.yml"
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
def daemon(name: str, argv: list[str], ready_url: str, tmp_path):
    """Run a server in its own process group, wait for its readiness URL, stop it by its pid's group."""
    log = (tmp_path / f"{name}.log").open("w")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / f"{name}.log").read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(ready_url, timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, f"{name} was not ready within 60 s"
            time.sleep(0.2)
        yield
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


@contextlib.contextmanager
def prometheus(targets: list[str], alertmanager: str, tmp_path):
    rules = yaml.safe_load(RULES.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "0s"
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(tmp_path / "rules.yml")],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager.removeprefix("http://")]}]}]},
        "scrape_configs": [{"job_name": "ragops-serving", "static_configs": [{"targets": targets}]}],
    }))
    base = f"http://127.0.0.1:{port}"
    argv = [shutil.which("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
    with daemon("prometheus", argv, base + "/-/ready", tmp_path):
        yield base


class Receiver:
    """Alertmanager's webhook protocol on loopback: what reached each receiver, by path (/pager, /team)."""

    def __init__(self):
        self.alerts: dict[str, list[dict]] = {"/pager": [], "/team": []}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                receiver.alerts.setdefault(self.path, []).extend(payload["alerts"])
                self.send_response(200)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        serve_in_thread(self.server)

    def names(self, path: str) -> set[str]:
        return {a["labels"]["alertname"] for a in self.alerts[path]}

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def alertmanager(receiver: Receiver, tmp_path):
    config = yaml.safe_load(ALERTMANAGER.read_text())
    config["route"] |= {"group_wait": "1s", "group_interval": "1s"}
    for route in config["route"].get("routes", []):
        route.pop("repeat_interval", None)
    for entry in config["receivers"]:
        entry["webhook_configs"] = [{"url": f"{receiver.url}/{entry['name']}", "send_resolved": False}]
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = [shutil.which("prometheus-alertmanager"), f"--config.file={tmp_path / 'alertmanager.yml'}",
            f"--storage.path={tmp_path / 'alertmanager'}", f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=", "--log.level=warn"]
    with daemon("alertmanager", argv, base + "/-/ready", tmp_path):
        yield base


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
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._guarded, daemon=True)

    def _guarded(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported by __exit__: a dead loop would otherwise look like missing series
            self.error = exc

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
        if self.error is not None:
            raise AssertionError(f"the traffic loop failed: {self.error!r}") from self.error


def _rollout_that_needs_a_person(settings) -> None:
    """A running rollout whose gate asked a person (low traffic), in the empty app's own registry; its share is 0, so
    that app's answers are unchanged. Its status thread exports ragops_rollout_low_traffic{action="ask_a_person"}."""
    from ragops.registry import Registry
    from ragops.registry.models import RolloutDecision, RolloutState
    from ragops.releases import create_release
    from ragops.rollout.machine import Rollout

    registry = Registry(settings.registry_url)
    create_release(registry, "cand", None, {}, "test")
    Rollout(settings, registry).start("cand", "test")
    with registry.session() as s:
        state = s.get(RolloutState, 1)
        state.candidate_percent = 0.0
        s.add(RolloutDecision(candidate_release_id=state.candidate_release_id, decision="hold", reason="needs a person",
                              evidence={"low_traffic": {"action": "ask_a_person", "users": 3, "requests": 9}}))
    registry.dispose()


def _a_quality_shift(settings) -> None:
    """A drift check that found the refusal rate shifted (monitoring/drift.py), in the empty app's own registry; its
    status thread exports ragops_quality_shift{signal="refusal_rate"} = 1 with the shift's size."""
    from datetime import datetime, timedelta, timezone

    from ragops.registry import Registry
    from ragops.registry.models import QualityCheck

    end = datetime.now(timezone.utc)
    registry = Registry(settings.registry_url)
    with registry.session() as s:
        s.add(QualityCheck(window_start=end - timedelta(hours=24), window_end=end, signal="refusal_rate",
                           release="live", variant="stable", current=0.3, baseline=0.1, difference=0.2, at_least=0.1,
                           requests=500, users=40, crossed=True, streak=2, shifted=True,
                           since=end - timedelta(hours=25), evidence={}))
    registry.dispose()


def test_every_alert_and_panel_query_returns_a_series_and_alerts_reach_their_receivers(indexed_own_corpus, corpus,
                                                                                     embedder, tmp_path):
    indexed = indexed_own_corpus
    from ragops.answer.llm import OpenAIChatModel
    from ragops.answer.pipeline import AnswerService
    from ragops.mcp_client import ToolConfig
    from ragops.audit.permissions import hash_token
    from ragops.ingest.refresh import Refresher
    from serving.app import create_app

    for binary, package in (("prometheus", "prometheus"), ("prometheus-alertmanager", "prometheus-alertmanager")):
        if shutil.which(binary) is None:
            pytest.skip(f"{binary} is not installed (Debian package {package}; .ci/run installs it)")
    (corpus / "empty.md").write_text("")
    Refresher(indexed, embedder=embedder).run()  # quarantines the empty document
    permissions = tmp_path / "mcp-permissions.yaml"
    permissions.write_text(json.dumps({"clients": [
        {"name": "reader", "token_sha256": hash_token("reader-token"), "tools": ["search_knowledge_base"]}]}))
    base = indexed.model_copy(update={
        "mcp_permissions": permissions, "status_metrics_interval_s": 1.0, "rate_limit": "100000/minute",
        "rate_limit_address": "100000/minute", "rate_limit_global": "100000/minute", "slo_p95_latency_ms": 0.001,
        "freshness_refresh_hours": 0.0001})
    _rollout_that_needs_a_person(base.model_copy(update={"home": tmp_path / "empty-home"}))
    _a_quality_shift(base.model_copy(update={"home": tmp_path / "empty-home"}))
    fake_llm = FakeLLM()
    fake_llm.mode = "error"
    receiver = Receiver()
    dead_tool = ToolConfig(url=f"http://127.0.0.1:{free_port()}/mcp/", tool="search", timeout_s=2.0)
    apps = {
        "main": (base, dict(tools=[dead_tool])),
        "limited": (base.model_copy(update={"rate_limit_global": "2/hour"}), {}),
        "empty": (base.model_copy(update={"home": tmp_path / "empty-home"}), {}),
        "llm": (base.model_copy(update={"llm_base_url": f"http://127.0.0.1:{free_port()}/v1"}),  # readiness: degraded
                dict(chat_model=OpenAIChatModel(fake_llm.base_url, "test-model", max_retries=0))),
    }
    try:
        with contextlib.ExitStack() as servers:
            urls = {}
            for name, (settings, extra) in apps.items():
                service = AnswerService(settings, embedder=embedder, **extra)
                app = create_app(settings, service=service, tools=extra.get("tools"))
                urls[name] = servers.enter_context(live_server(app))
            targets = [u.removeprefix("http://") for u in urls.values()] + [f"127.0.0.1:{free_port()}"]
            with alertmanager(receiver, tmp_path) as am, prometheus(targets, am, tmp_path) as prom:
                live = {k: v for k, v in (alert_queries() | panel_queries()).items() if "absent(" not in v}
                with Traffic(urls) as traffic:
                    _await_series(prom, live, deadline_s=240)
                assert traffic.statuses["empty /v1/search"] == {503}
                assert traffic.statuses["llm /v1/ask"] == {503} and 429 in traffic.statuses["limited /v1/search"]

                rules = httpx.get(prom + "/api/v1/rules", timeout=10).json()["data"]["groups"]
                broken = [(r["name"], r["lastError"]) for g in rules for r in g["rules"] if r.get("health") != "ok"]
                assert not broken and sum(len(g["rules"]) for g in rules) == 30
                active = {a["labels"]["alertname"]: a for a in httpx.get(prom + "/api/v1/alerts").json()["data"]["alerts"]}
                assert active["RagopsEvaluationOverdue"]["annotations"]["summary"] == "No evaluation has succeeded yet"
                # The replica whose LLM is down is degraded and still ready (as /readyz): RagopsNotReady's
                # `ragops_ready == 0` does not hold for it while its llm check is at 0.
                llm = urls["llm"].removeprefix("http://")
                degraded = (f'ragops_ready{{instance="{llm}"}} == 1 and on (instance) '
                            f'ragops_ready_check{{instance="{llm}",check="llm"}} == 0')
                _await_series(prom, {"llm degraded, still ready": degraded}, deadline_s=60)
                _await_delivery(receiver, {"/pager": {"RagopsStoreUnavailable", "RagopsNotReady"},
                                           "/team": {"RagopsDocumentsStale", "RagopsGlobalRateLimitReached",
                                                     "RagopsQualityDrift"}})
                severities = {path: {a["labels"]["severity"] for a in alerts} for path, alerts in receiver.alerts.items()}
                assert severities["/pager"] == {"critical"} and "critical" not in severities["/team"]

                servers.close()  # every replica gone: only now can RagopsServingDown's absent() hold
                _await_series(prom, {k: v for k, v in alert_queries().items() if "absent(" in v}, deadline_s=60)
                _await_delivery(receiver, {"/pager": {"RagopsServingDown"}})
    finally:
        fake_llm.close()
        receiver.close()


def _await_delivery(receiver: Receiver, expected: dict[str, set[str]], deadline_s: float = 60) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline and not all(names <= receiver.names(path) for path, names in expected.items()):
        time.sleep(0.5)
    for path, names in expected.items():
        assert names <= receiver.names(path), f"{path} got {sorted(receiver.names(path))}, not all of {sorted(names)}"
