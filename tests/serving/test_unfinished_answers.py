"""Answers the language model did not finish (issue 25 leftovers): one over RAGOPS_LLM_ANSWER_MAX_CHARS and one the
model stopped at its own token limit (`finish_reason: "length"`), streamed and not, through the OpenAI-compatible API
and /v1/ask, against a fake LLM speaking the real protocol. Each is cut, marked `truncated`, and its request event
says so (`error` starting "truncated"), which the monitoring summaries count."""

from __future__ import annotations

import json

import pytest

from support import events
from ragops.answer.llm import CircuitBreaker, OpenAIChatModel

QUESTION = "What happens to documents that fail validation?"


def _llm(fake, max_chars=20000):
    return OpenAIChatModel(fake.base_url, "test-model", timeout_s=5, max_retries=0,
                           breaker=CircuitBreaker(threshold=50), deadline_s=15.0, max_chars=max_chars)


def _chat(stream=False):
    return {"model": "ragops", "messages": [{"role": "user", "content": QUESTION}], "stream": stream}


def _final(reply) -> tuple[str, dict]:
    """(the text, the last chunk) of a streamed chat completion."""
    chunks = [json.loads(b[6:]) for b in reply.text.split("\n\n") if b.startswith("data: {")]
    return "".join(c["choices"][0]["delta"].get("content", "") for c in chunks), chunks[-1]


def _event(client, indexed, endpoint="/v1/chat/completions"):
    client.app.state.events.flush()
    [event] = events(indexed, endpoint=endpoint)
    return event


def test_a_non_streamed_answer_over_its_size_bound_is_cut_and_marked_as_a_streamed_one_is(make_client, fake_llm,
                                                                                          indexed):
    fake_llm.reply = "Refreshes are guarded [1]. " + "word " * 400
    client = make_client(chat_model=_llm(fake_llm, max_chars=300))
    body = client.post("/v1/chat/completions", json=_chat()).json()
    [choice] = body["choices"]
    text = choice["message"]["content"]
    assert text.startswith(fake_llm.reply[:300]) and fake_llm.reply[:301] not in text
    assert "The answer was cut off" in text and choice["finish_reason"] == "length"
    assert body["ragops"]["truncated"] is True and body["ragops"]["fallback"] == "llm_unavailable"
    event = _event(client, indexed)
    assert (event.status, event.fallback) == (503, "llm_unavailable")
    assert event.error.startswith("truncated mid-answer") and "over 300 characters" in event.error


def test_ask_reports_a_cut_answer_as_truncated(make_client, fake_llm, indexed):
    fake_llm.reply = "Refreshes are guarded [1]. " + "word " * 400
    client = make_client(chat_model=_llm(fake_llm, max_chars=300))
    reply = client.post("/v1/ask", json={"question": QUESTION})
    body = reply.json()
    assert reply.status_code == 503 and body["truncated"] is True and body["error"]["code"] == "llm_unavailable"
    assert body["answer"].startswith(fake_llm.reply[:300]) and fake_llm.reply[:301] not in body["answer"]
    assert _event(client, indexed, "/v1/ask").error.startswith("truncated mid-answer")


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "streamed"])
def test_a_model_stopped_at_its_token_limit_is_passed_on_as_truncated(make_client, fake_llm, indexed, stream):
    fake_llm.finish_reason = "length"
    client = make_client(chat_model=_llm(fake_llm))
    reply = client.post("/v1/chat/completions", json=_chat(stream))
    assert reply.status_code == 200
    if stream:
        text, last = _final(reply)
        choice, ext = last["choices"][0], last["ragops"]
    else:
        body = reply.json()
        choice, ext = body["choices"][0], body["ragops"]
        text = choice["message"]["content"]
    assert text.startswith(fake_llm.reply) and "reached its length limit" in text
    assert choice["finish_reason"] == "length" and ext["truncated"] is True and ext["fallback"] is None
    event = _event(client, indexed)
    assert event.status == 200 and event.fallback is None  # an answer, not an outage: the gate counts no error
    assert event.error.startswith("truncated") and "finish_reason length" in event.error
    assert fake_llm.calls == 1 and client.app.state.service.chat_model.breaker.failures == 0


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "streamed"])
def test_a_content_filter_stop_is_passed_on_as_openai_says_it(make_client, fake_llm, indexed, stream):
    fake_llm.finish_reason = "content_filter"
    client = make_client(chat_model=_llm(fake_llm))
    reply = client.post("/v1/chat/completions", json=_chat(stream))
    if stream:
        text, last = _final(reply)
        choice, ext = last["choices"][0], last["ragops"]
    else:
        choice, ext = reply.json()["choices"][0], reply.json()["ragops"]
        text = choice["message"]["content"]
    assert reply.status_code == 200 and text.startswith(fake_llm.reply) and "content filter withheld" in text
    assert choice["finish_reason"] == "content_filter" and ext["truncated"] is True and ext["fallback"] is None
    event = _event(client, indexed)
    assert event.status == 200 and "finish_reason content_filter" in event.error
    ask = client.post("/v1/ask", json={"question": QUESTION}).json()
    assert ask["truncated"] is True and "content filter withheld" in ask["answer"]


def test_a_finished_answer_is_not_marked(make_client, fake_llm, indexed):
    client = make_client(chat_model=_llm(fake_llm))
    body = client.post("/v1/chat/completions", json=_chat()).json()
    assert body["choices"][0]["finish_reason"] == "stop" and body["ragops"]["truncated"] is False
    assert _event(client, indexed).error is None
