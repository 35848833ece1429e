"""Fault matrix, MCP tool (a tool the assistant calls): down, hanging, HTTP 500, malformed, an error result.
Outcome: 200 tool_failed naming the tool and the reason, and the event stored."""

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


def _ask(cfg, embedder, tool):
    from ragops.answer.pipeline import AnswerService
    from serving.app import create_app

    tools = [tool]
    pin_tools(cfg, tools)  # approved, as an operator would: an unapproved tool is held and never called (issue 13)
    with TestClient(create_app(cfg, service=AnswerService(cfg, embedder=embedder, tools=tools), tools=tools)) as client:
        reply = client.post("/v1/ask", json=Q)
        assert client.app.state.events.flush(timeout_s=60)
    body = reply.json()
    assert reply.status_code == 200 and body["fallback"] == "tool_failed", reply.text
    assert tool.tool in body["answer"] and "try again shortly" in body["answer"]
    assert [(e.status, e.fallback) for e in events(cfg)] == [(200, "tool_failed")]
    return body["answer"]


@pytest.mark.fault("MCP tool", "down (nothing listens)")
def test_tool_down(indexed, embedder, matrix):
    from ragops.mcp_client import ToolConfig

    _ask(indexed, embedder, ToolConfig(url=f"http://127.0.0.1:{free_port()}/mcp/", tool="lookup", timeout_s=5))
    matrix.record("200 tool_failed naming the tool and the connection error; event stored")


@pytest.mark.fault("MCP tool", "slow past its timeout")
def test_tool_hangs(indexed, embedder, tool_servers, matrix):
    from ragops.mcp_client import ToolConfig

    answer = _ask(indexed, embedder, ToolConfig(url=tool_servers[0], tool="hangs", timeout_s=1.0))
    assert "no answer within 1 s" in answer
    matrix.record("200 tool_failed \"no answer within 1 s\" at the tool's timeout; event stored")


@pytest.mark.fault("MCP tool", "error status (HTTP 500)")
def test_tool_http_500(indexed, embedder, tool_servers, matrix):
    from ragops.mcp_client import ToolConfig

    _ask(indexed, embedder, ToolConfig(url=tool_servers[1] + "/500/mcp/", tool="lookup", timeout_s=5))
    matrix.record("200 tool_failed naming the tool and the HTTP error; event stored")


@pytest.mark.fault("MCP tool", "malformed reply")
def test_tool_malformed(indexed, embedder, tool_servers, matrix):
    from ragops.mcp_client import ToolConfig

    _ask(indexed, embedder, ToolConfig(url=tool_servers[1] + "/garbage/mcp/", tool="lookup", timeout_s=5))
    matrix.record("200 tool_failed (the protocol error is the tool's failure, never a 500); event stored")


@pytest.mark.fault("MCP tool", "error result (the tool reports a failure)")
def test_tool_error_result(indexed, embedder, tool_servers, matrix):
    from ragops.mcp_client import ToolConfig

    answer = _ask(indexed, embedder, ToolConfig(url=tool_servers[0], tool="fails", timeout_s=5))
    assert "upstream database is down" in answer
    matrix.record("200 tool_failed quoting the tool's own reason; event stored")
