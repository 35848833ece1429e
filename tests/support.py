"""Helpers shared by the tests: fake peers (an OpenAI-compatible LLM), a live uvicorn server, registry reads."""

from __future__ import annotations

import json
import socket
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "dags"


class FakeLLM:
    """Speaks the OpenAI chat-completions protocol; `mode` injects outages: ok, slow, error, malformed, empty, and
    hang (no answer until `released` is set, which close() does)."""

    def __init__(self):
        self.mode = "ok"
        self.calls = 0
        self.last_prompt = ""
        self.last_system = ""
        self.reply = "Refreshes that delete too much are blocked by a guard [1]."
        self.released = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body: bytes, ctype="application/json"):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                self._send(200, json.dumps({"object": "list", "data": [{"id": "test-model", "object": "model"}]}).encode())

            def do_POST(self):
                payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                fake.calls += 1
                fake.last_prompt = payload["messages"][-1]["content"]
                fake.last_system = payload["messages"][0]["content"]
                if fake.mode == "hang":
                    fake.released.wait(120)
                if fake.mode == "slow":
                    time.sleep(2.0)
                if fake.mode == "error":
                    return self._send(500, b'{"error": {"message": "boom"}}')
                if fake.mode == "malformed":
                    return self._send(200, b'{"choices": [ {"message": ')
                content = "" if fake.mode == "empty" else fake.reply
                self._send(200, json.dumps({
                    "id": "c1", "object": "chat.completion", "created": 0, "model": payload.get("model"),
                    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(app):
    """Run an ASGI app under uvicorn in a thread on 127.0.0.1 and a free port; yields the base URL."""
    import uvicorn

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                                           timeout_graceful_shutdown=2))
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


def events(settings, **where):
    from sqlalchemy import select

    from ragops.registry import Registry
    from ragops.registry.models import RequestEvent

    registry = Registry(settings.registry_url)
    with registry.session() as s:
        query = select(RequestEvent).order_by(RequestEvent.id)
        for key, value in where.items():
            query = query.where(getattr(RequestEvent, key) == value)
        rows = s.scalars(query).all()
    registry.dispose()
    return rows


def task_states(run) -> dict:
    """{task_id: state} of a DAG run (unmapped tasks)."""
    return {ti.task_id: ti.state for ti in run.get_task_instances()}


def samples(exposition: str) -> dict[tuple, float]:
    """Prometheus text exposition -> {(name, (("label", "value"), ...)): value}, labels sorted by name."""
    from prometheus_client.parser import text_string_to_metric_families

    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(exposition) for s in family.samples}


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
