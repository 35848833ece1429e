"""Every fallback code, reached through real faults: a fake LLM that fails, a hanging MCP tool, a broken index."""

import shutil

import pytest

from support import events, flaky_tool_server, pin_tools
from ragops.answer.llm import CircuitBreaker, OpenAIChatModel
from ragops.mcp_client import ToolConfig


def _llm(fake, **kw):
    return OpenAIChatModel(fake.base_url, "test-model", timeout_s=kw.pop("timeout_s", 0.5), max_retries=kw.pop("max_retries", 1),
                           breaker=kw.pop("breaker", CircuitBreaker(threshold=50)))


def _expect(reply, status, code):
    assert reply.status_code == status, reply.text
    body = reply.json()
    assert body["fallback"] == code
    assert body.get("answer") or body.get("error", {}).get("message") or body.get("message")
    return body


def test_no_results_is_honest(make_client, indexed):
    client = make_client()
    body = _expect(client.post("/v1/ask", json={"question": "Best pizza dough hydration for a wood oven?"}), 200, "no_results")
    assert "No matching information was found" in body["answer"] and body["citations"] == []
    client.app.state.events.flush()
    assert events(indexed, fallback="no_results")
    assert 'ragops_fallbacks_total{code="no_results"} 1.0' in client.get("/metrics").text


def test_llm_answer_cites_the_chunks_it_used(make_client, fake_llm):
    body = make_client(chat_model=_llm(fake_llm)).post("/v1/ask", json={"question": "What blocks a mass delete?"}).json()
    assert body["fallback"] is None and body["answer"].startswith("Refreshes that delete too much")
    assert len(body["citations"]) == 1 and body["citations"][0]["n"] == 1
    assert "Question: What blocks a mass delete?" in fake_llm.last_prompt and "[1]" in fake_llm.last_prompt


@pytest.mark.parametrize("mode", ["error", "malformed", "slow", "empty"])
def test_llm_failures_give_a_maintenance_message(make_client, fake_llm, indexed, mode):
    fake_llm.mode = mode
    client = make_client(chat_model=_llm(fake_llm))
    body = _expect(client.post("/v1/ask", json={"question": "What blocks a mass delete?"}), 503, "llm_unavailable")
    assert "maintenance" in body["answer"] and body["error"]["code"] == "llm_unavailable"
    client.app.state.events.flush()
    assert events(indexed, fallback="llm_unavailable")[0].status == 503


def test_llm_down_and_the_circuit_opens(make_client, fake_llm):
    url = fake_llm.base_url
    fake_llm.close()  # nothing listens there any more: connection refused
    fake_llm.base_url = url
    breaker = CircuitBreaker(threshold=2, reset_s=60)
    client = make_client(chat_model=_llm(fake_llm, breaker=breaker, max_retries=0))
    for _ in range(3):
        _expect(client.post("/v1/ask", json={"question": "What blocks a mass delete?"}), 503, "llm_unavailable")
    assert breaker.state == "open"


def test_open_circuit_stops_calling_the_llm(make_client, fake_llm):
    fake_llm.mode = "error"
    breaker = CircuitBreaker(threshold=2, reset_s=60)
    client = make_client(chat_model=_llm(fake_llm, breaker=breaker, max_retries=0))
    for _ in range(4):
        client.post("/v1/ask", json={"question": "What blocks a mass delete?"})
    assert fake_llm.calls == 2 and breaker.state == "open"


@pytest.fixture
def hanging_tool():
    """A real MCP server over streamable HTTP whose tool never answers in time, and one that raises."""
    server = flaky_tool_server()
    with server.running() as url:
        yield url


@pytest.mark.parametrize("tool,reason", [("hangs", "no answer within 1 s"), ("fails", "upstream database")])
def test_tool_failure_or_timeout_is_explained(make_client, indexed, hanging_tool, tool, reason):
    """The user hears which tool failed and a reference; the reason is kept with the request event, never shown."""
    tools = [ToolConfig(url=hanging_tool, tool=tool, timeout_s=1.0)]
    pin_tools(indexed, tools)
    client = make_client(tools=tools)
    body = _expect(client.post("/v1/ask", json={"question": "What blocks a mass delete?"}), 200, "tool_failed")
    assert f"{tool!r} right now (reference {body['request_id']})" in body["answer"] and reason not in body["answer"]
    assert "try again shortly" in body["answer"]
    client.app.state.events.flush()
    assert [reason in e.error for e in events(indexed, fallback="tool_failed")] == [True]


def test_unreachable_tool_server_is_tool_failed(make_client):
    from support import free_port

    tools = [ToolConfig(url=f"http://127.0.0.1:{free_port()}/mcp/", tool="anything", timeout_s=2.0)]
    _expect(make_client(tools=tools).post("/v1/ask", json={"question": "What blocks a mass delete?"}), 200, "tool_failed")


def test_index_that_cannot_be_opened(make_client, indexed):
    client = make_client()
    shutil.rmtree(indexed.lance_dir)
    body = _expect(client.post("/v1/search", json={"question": "guards"}), 503, "store_unavailable")
    assert body["error"]["code"] == "store_unavailable" and "maintenance" in body["message"]
    _expect(client.post("/v1/ask", json={"question": "guards"}), 503, "store_unavailable")
    client.app.state.events.flush()
    assert len(events(indexed, fallback="store_unavailable")) == 2
    assert 'ragops_fallbacks_total{code="store_unavailable"} 2.0' in client.get("/metrics").text


def test_a_language_model_that_declines_is_no_results(make_client, fake_llm, indexed):
    fake_llm.mode = "decline"
    client = make_client(chat_model=_llm(fake_llm))
    body = _expect(client.post("/v1/ask", json={"question": "What blocks a mass delete?"}), 200, "no_results")
    assert "No matching information was found" in body["answer"] and body["citations"] == []
    assert fake_llm.calls == 1  # retrieval found passages; it was the model that said they do not answer
