"""Fault matrix, MCP tool (a tool the assistant calls): down, hanging, HTTP 500, malformed, an error result.
Outcome: 200 tool_failed naming the tool, with a generic message and the request id as its reference; the real cause
(never shown verbatim to the user, issue 21) is in the stored event and the log."""

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient

from support import events, flaky_tool_server, free_port, pin_tools, serve_in_thread

Q = {"question": "What blocks a mass delete?"}


@pytest.fixture
def tool_servers():
    """A real MCP server with a hanging and a failing tool, and a plain HTTP server answering 500 or noise."""
    server = flaky_tool_server()

    class Broken(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = b"internal error" if self.path.startswith("/500") else b"{\"jsonrpc\": \"2.0\", \"id\": "
            self.send_response(500 if self.path.startswith("/500") else 200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    plain = ThreadingHTTPServer(("127.0.0.1", 0), Broken)
    serve_in_thread(plain)
    with server.running() as url:
        yield url, f"http://127.0.0.1:{plain.server_address[1]}"
    plain.shutdown()
    plain.server_close()


def _ask(cfg, embedder, tool, caplog) -> str:
    """What the user sees (checked here, the same for every fault); returns the cause the event recorded."""
    from ragops.answer.pipeline import AnswerService
    from serving.app import create_app

    tools = [tool]
    pin_tools(cfg, tools)  # approved, as an operator would: an unapproved tool is held and never called (issue 13)
    with TestClient(create_app(cfg, service=AnswerService(cfg, embedder=embedder, tools=tools), tools=tools)) as client:
        reply = client.post("/v1/ask", json=Q)
        assert client.app.state.events.flush(timeout_s=60)
    body = reply.json()
    assert reply.status_code == 200 and body["fallback"] == "tool_failed", reply.text
    assert body["answer"].startswith(f"The assistant could not use the tool {tool.tool!r} right now (reference "
                                     f"{body['request_id']}). Please try again shortly.")
    stored = events(cfg)
    assert [(e.status, e.fallback) for e in stored] == [(200, "tool_failed")]
    cause = stored[0].error
    assert cause.startswith(f"the tool {tool.tool!r} failed: ") and cause not in body["answer"]
    assert f"request {body['request_id']}: {cause}"[:120] in caplog.text
    return cause


@pytest.mark.fault("MCP tool", "down (nothing listens)")
def test_tool_down(indexed, embedder, matrix, caplog):
    from ragops.mcp_client import ToolConfig

    cause = _ask(indexed, embedder, ToolConfig(url=f"http://127.0.0.1:{free_port()}/mcp/", tool="lookup", timeout_s=5),
                 caplog)
    assert "ConnectError" in cause
    matrix.record("200 tool_failed: a generic message naming the tool, with the request id as reference; the "
                  "connection error in the event and the log")


@pytest.mark.fault("MCP tool", "slow past its timeout")
def test_tool_hangs(indexed, embedder, tool_servers, matrix, caplog):
    from ragops.mcp_client import ToolConfig

    cause = _ask(indexed, embedder, ToolConfig(url=tool_servers[0], tool="hangs", timeout_s=1.0), caplog)
    assert cause.endswith("no answer within 1 s")
    matrix.record("200 tool_failed at the tool's timeout: the generic message; \"no answer within 1 s\" in the event "
                  "and the log")


@pytest.mark.fault("MCP tool", "error status (HTTP 500)")
def test_tool_http_500(indexed, embedder, tool_servers, matrix, caplog):
    from ragops.mcp_client import ToolConfig

    url = tool_servers[1].replace("http://", "http://svc:hunter2@") + "/500/mcp/"
    cause = _ask(indexed, embedder, ToolConfig(url=url, tool="lookup", timeout_s=5), caplog)
    assert "ServerHttpError: HTTP 500 Internal Server Error from http://svc:***@127.0.0.1" in cause  # not ExceptionGroup
    assert "hunter2" not in cause and "hunter2" not in caplog.text
    matrix.record("200 tool_failed: the generic message; the event and the log name the HTTP error (\"HTTP 500 "
                  "Internal Server Error from <URL, credentials masked>\")")


@pytest.mark.fault("MCP tool", "malformed reply")
def test_tool_malformed(indexed, embedder, tool_servers, matrix, caplog):
    from ragops.mcp_client import ToolConfig

    _ask(indexed, embedder, ToolConfig(url=tool_servers[1] + "/garbage/mcp/", tool="lookup", timeout_s=5), caplog)
    matrix.record("200 tool_failed: the generic message (the protocol error is the tool's failure, never a 500); "
                  "the error in the event and the log")


@pytest.mark.fault("MCP tool", "error result (the tool reports a failure)")
def test_tool_error_result(indexed, embedder, tool_servers, matrix, caplog):
    from ragops.mcp_client import ToolConfig

    cause = _ask(indexed, embedder, ToolConfig(url=tool_servers[0], tool="fails", timeout_s=5), caplog)
    assert "upstream database is down" in cause  # the tool's own words reach the operator, never the user
    matrix.record("200 tool_failed: the generic message, never the tool's own text; its reason in the event and the "
                  "log")
