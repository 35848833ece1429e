"""The OpenAI-compatible API in process (TestClient): the protocol's shapes, conversations and their bounds, the
streamed /v1/ask, fallbacks as assistant messages, and the same doors as /v1/ask. The official openai client against
a running `ragops serve` is in test_openai_client.py."""

from __future__ import annotations

import json

import pytest

from support import events
from ragops.answer.llm import CircuitBreaker, OpenAIChatModel


def _llm(fake, **kw):
    return OpenAIChatModel(fake.base_url, "test-model", timeout_s=kw.pop("timeout_s", 5), max_retries=0,
                           breaker=CircuitBreaker(threshold=50), deadline_s=kw.pop("deadline_s", 15.0))


def _chat(question, *earlier, stream=False, model="ragops", **extra):
    messages = [{"role": "system", "content": "You are a helpful assistant."}]
    for turn in earlier:
        messages += [{"role": "user", "content": turn}, {"role": "assistant", "content": "An earlier answer [1]."}]
    return {"model": model, "messages": messages + [{"role": "user", "content": question}], "stream": stream} | extra


def _sse(reply) -> list[tuple[str | None, str]]:
    """(event, data) of each server-sent event of a reply."""
    out = []
    for block in reply.text.split("\n\n"):
        if not block.strip():
            continue
        event = next((line[7:] for line in block.splitlines() if line.startswith("event: ")), None)
        data = "\n".join(line[6:] for line in block.splitlines() if line.startswith("data: "))
        out.append((event, data))
    return out


def test_completion_has_the_openai_shape_with_numbered_sources(make_client, indexed):
    client = make_client()
    reply = client.post("/v1/chat/completions", json=_chat("What happens to documents that fail validation?"))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["object"] == "chat.completion" and body["model"] == "ragops"
    assert body["id"] == f"chatcmpl-{reply.headers['X-Request-ID']}"
    [choice] = body["choices"]
    text = choice["message"]["content"]
    assert choice["finish_reason"] == "stop" and choice["message"]["role"] == "assistant"
    assert "quarantined" in text and "[1]" in text and "\n\nSources:\n[1] " in text and "refresh.md" in text
    ext = body["ragops"]
    assert ext["fallback"] is None and ext["citations"][0]["doc_uri"].endswith("refresh.md")
    assert ext["variant"] == "stable" and ext["release"] == "live" and ext["truncated"] is False
    client.app.state.events.flush()
    [event] = events(indexed, endpoint="/v1/chat/completions")
    assert event.status == 200 and event.question == "What happens to documents that fail validation?"
    assert event.query is None and event.chunk_ids  # nothing was condensed


def test_stream_is_chunks_ending_with_done_and_the_extension(make_client, indexed):
    client = make_client()
    reply = client.post("/v1/chat/completions", json=_chat("What happens to documents that fail validation?",
                                                           stream=True))
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/event-stream")
    events_ = _sse(reply)
    assert events_[-1] == (None, "[DONE]")
    chunks = [json.loads(data) for _, data in events_[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    pieces = [c["choices"][0]["delta"]["content"] for c in chunks[1:-1]]
    assert len(pieces) >= 3  # the extractive answer goes out sentence by sentence: label, sentences, sources
    assert text.startswith("Extractive answer") and "quarantined" in text and "Sources:\n[1]" in text
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and chunks[-1]["ragops"]["citations"]
    assert 'ragops_time_to_first_token_seconds_count{endpoint="/v1/chat/completions"} 1.0' in \
        client.get("/metrics").text
    client.app.state.events.flush()
    [event] = events(indexed, endpoint="/v1/chat/completions")
    assert event.status == 200 and event.chunk_ids


def test_a_follow_up_is_condensed_by_the_rule_and_recorded(make_client, indexed):
    client = make_client()
    body = client.post("/v1/chat/completions", json=_chat("and what happens to the ones that fail?",
                                                          "How are documents validated during a refresh?")).json()
    query = body["ragops"]["query"]
    assert query.startswith("and what happens to the ones that fail? (") and "validated" in query
    assert "quarantined" in body["choices"][0]["message"]["content"]
    client.app.state.events.flush()
    [event] = events(indexed, endpoint="/v1/chat/completions")
    assert event.question == "and what happens to the ones that fail?" and event.query == query


def test_a_follow_up_is_rewritten_by_the_language_model(make_client, fake_llm, indexed):
    fake_llm.condensed = "How are quarantined documents handled in a refresh?"
    client = make_client(chat_model=_llm(fake_llm))
    body = client.post("/v1/chat/completions", json=_chat("and what about those?", "How does a refresh work?")).json()
    assert fake_llm.condense_calls == 1 and body["ragops"]["query"] == fake_llm.condensed
    assert "Question: How are quarantined documents handled in a refresh?" in fake_llm.last_prompt
    assert "earlier answer" not in fake_llm.last_prompt  # assistant turns never reach the search or the prompt


@pytest.mark.parametrize("payload, status, code", [
    (_chat("q", *["earlier question"] * 20), 400, "conversation_too_long"),  # 42 messages > 40
    (_chat("x" * 2001), 400, "conversation_too_long"),
    ({"model": "ragops", "messages": [{"role": "user", "content": "a" * 1999}] * 13}, 400, "conversation_too_long"),
    ({"model": "ragops", "messages": [{"role": "assistant", "content": "hi"}]}, 422, "invalid_request"),
    ({"model": "ragops", "messages": []}, 422, "invalid_request"),
    ({"model": "ragops", "messages": [{"role": "user", "content": "hi"}], "n": 2}, 422, "invalid_request"),
    (_chat("What is quarantined?", model="gpt-4o"), 404, "model_not_found"),
])
def test_bad_conversations_get_a_clear_4xx_and_an_event(make_client, indexed, payload, status, code):
    client = make_client()
    reply = client.post("/v1/chat/completions", json=payload)
    assert reply.status_code == status, reply.text
    assert reply.json()["error"]["code"] == code and reply.json()["error"]["message"]
    client.app.state.events.flush()
    assert [e.status for e in events(indexed, endpoint="/v1/chat/completions")] == [status]


def test_content_parts_and_unknown_fields_are_accepted(make_client):
    reply = make_client().post("/v1/chat/completions", json={
        "model": "ragops", "temperature": 0.2, "max_tokens": 300, "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": [{"type": "text", "text": "What happens to documents that fail "
                                                                           "validation?"}]}]})
    assert reply.status_code == 200 and "quarantined" in reply.json()["choices"][0]["message"]["content"]


def test_fallbacks_are_assistant_messages_never_errors(make_client, fake_llm, indexed):
    fake_llm.mode = "error"
    client = make_client(chat_model=_llm(fake_llm))
    for stream in (False, True):
        reply = client.post("/v1/chat/completions", json=_chat("What blocks a mass delete?", stream=stream))
        assert reply.status_code == 200
        if stream:
            final = json.loads(_sse(reply)[-2][1])
            text = "".join(json.loads(d)["choices"][0]["delta"].get("content", "") for _, d in _sse(reply)[:-1])
        else:
            final = reply.json()
            text = final["choices"][0]["message"]["content"]
        assert final["ragops"]["fallback"] == "llm_unavailable" and "language model is down" in text
    pizza = client.post("/v1/chat/completions", json=_chat("Best pizza dough hydration for a wood oven?")).json()
    assert pizza["ragops"]["fallback"] == "no_results" and "No matching information" in \
        pizza["choices"][0]["message"]["content"]
    client.app.state.events.flush()
    # the events keep the answer's own status: the canary gate counts a model that is down as an error
    assert sorted((e.status, e.fallback) for e in events(indexed, endpoint="/v1/chat/completions")) == [
        (200, "no_results"), (503, "llm_unavailable"), (503, "llm_unavailable")]


def test_models_lists_what_the_caller_may_name(make_client, indexed, tmp_path):
    from ragops.audit.apikeys import issue

    key, _ = issue(tmp_path / "keys.yaml", "desk")
    client = make_client(indexed.model_copy(update={"api_keys": tmp_path / "keys.yaml"}))
    assert [m["id"] for m in client.get("/v1/models").json()["data"]] == ["ragops"]
    listed = client.get("/v1/models", headers={"Authorization": f"Bearer {key}"}).json()
    assert listed["object"] == "list" and [m["id"] for m in listed["data"]] == ["ragops", "live"]
    assert client.get("/v1/models/live", headers={"Authorization": f"Bearer {key}"}).json()["id"] == "live"
    assert client.get("/v1/models/live").status_code == 404  # not for a caller without a key
    pinned = client.post("/v1/chat/completions", json=_chat("What is quarantined?", model="live"),
                         headers={"Authorization": f"Bearer {key}"})
    assert pinned.status_code == 200 and pinned.json()["ragops"]["variant"] == "pinned"
    anonymous = client.post("/v1/chat/completions", json=_chat("What is quarantined?", model="live"))
    assert anonymous.status_code == 404
    wrong = client.post("/v1/chat/completions", json=_chat("What is quarantined?"),
                        headers={"Authorization": "Bearer not-a-key"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"


def test_rate_limits_apply_to_chat(make_client, indexed):
    client = make_client(indexed.model_copy(update={"rate_limit_address": "2/hour"}))
    codes = [client.post("/v1/chat/completions", json=_chat("What is quarantined?", stream=True)).status_code
             for _ in range(3)]
    assert codes == [200, 200, 429]
    assert 'ragops_rate_limited_total{scope="caller"} 1.0' in client.get("/metrics").text


def test_ask_streams_start_deltas_and_done(make_client, indexed):
    client = make_client()
    reply = client.post("/v1/ask", json={"question": "What happens to documents that fail validation?",
                                         "stream": True})
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/event-stream")
    sse = _sse(reply)
    assert sse[0][0] == "start" and sse[-1][0] == "done" and {e for e, _ in sse[1:-1]} == {"delta"}
    done = json.loads(sse[-1][1])
    assert done["answer"] == "".join(json.loads(d)["text"] for _, d in sse[1:-1])
    assert done["status"] == 200 and done["citations"] and done["request_id"] == reply.headers["X-Request-ID"]
    client.app.state.events.flush()
    [event] = events(indexed, endpoint="/v1/ask")
    assert event.status == 200 and event.question == "What happens to documents that fail validation?"


def test_llm_tokens_stream_through(make_client, fake_llm, indexed):
    client = make_client(chat_model=_llm(fake_llm))
    reply = client.post("/v1/chat/completions", json=_chat("What blocks a mass delete?", stream=True))
    contents = [json.loads(d)["choices"][0]["delta"].get("content") for _, d in _sse(reply)[:-1]]
    words = fake_llm.reply.split(" ")
    assert contents[1:1 + len(words)] == [w + " " for w in words[:-1]] + [words[-1]]  # token by token, as sent
    assert fake_llm.streams == 1 and json.loads(_sse(reply)[-2][1])["ragops"]["citations"][0]["n"] == 1


def test_canary_routing_is_sticky_per_user_and_both_kinds_count(make_client, indexed, tmp_path):
    from ragops.audit.apikeys import issue
    from ragops.releases import bucket, create_release, routing_key
    from ragops.rollout.machine import Rollout

    key, _ = issue(tmp_path / "keys.yaml", "desk")
    cfg = indexed.model_copy(update={"api_keys": tmp_path / "keys.yaml", "rollout_stages": [50.0, 100.0]})
    client = make_client(cfg)
    machine = Rollout(cfg)
    create_release(machine.registry, "twin", None, {}, "test")
    machine.start("twin", "test")
    users = {variant: next(u for u in (f"user-{i}" for i in range(1000))
                           if (bucket(routing_key("key:desk", u)) < 5000) == (variant == "canary"))
             for variant in ("canary", "stable")}
    client.app.state.service._rollout = None  # the router re-reads the rollout now, not within its 5 s
    auth = {"Authorization": f"Bearer {key}"}
    assert [m["id"] for m in client.get("/v1/models", headers=auth).json()["data"]] == ["ragops", "live", "twin"]
    for variant, user in users.items():
        for stream in (False, True, False):
            reply = client.post("/v1/chat/completions", headers=auth,
                                json=_chat("What is quarantined?", stream=stream, user=user))
            final = json.loads(_sse(reply)[-2][1]) if stream else reply.json()
            assert final["ragops"]["variant"] == variant  # the same variant, request after request
    client.app.state.events.flush()
    counted = [(e.variant, e.verified) for e in events(indexed, endpoint="/v1/chat/completions")]
    assert sorted(counted) == [("canary", True)] * 3 + [("stable", True)] * 3


def test_the_recorded_question_and_query_are_redacted(make_client, indexed):
    client = make_client()
    for stream in (False, True):
        reply = client.post("/v1/chat/completions", json=_chat("and what happens to it? mail ann@example.com",
                                                               "How is a document from ann@example.com validated?",
                                                               stream=stream))
        assert reply.status_code == 200
    client.app.state.events.flush()
    rows = events(indexed, endpoint="/v1/chat/completions")
    assert len(rows) == 2 and all("ann@example.com" not in (e.question + e.query) for e in rows)
    assert all("[email]" in e.question and "ann" not in e.query.split("(")[1] for e in rows)



@pytest.mark.parametrize("content", ['"what is \\ud800 quarantined?"',
                                     '[{"type": "text", "text": "what is \\udfff quarantined?"}]'])
def test_a_lone_surrogate_is_refused_as_ask_refuses_it(make_client, indexed, content):
    """Attacked after landing (issue 25): JSON may escape half a UTF-16 pair; /v1/ask refused it with 422 but a chat
    message's content (a union of string and parts) let it through to the embedder, which failed: a 500."""
    client = make_client()
    raw = '{"model": "ragops", "messages": [{"role": "user", "content": %s}]}' % content
    for stream in (False, True):
        body = raw[:-1] + (', "stream": true}' if stream else "}")
        reply = client.post("/v1/chat/completions", content=body, headers={"Content-Type": "application/json"})
        assert reply.status_code == 422, reply.text
        assert reply.json()["error"]["code"] == "invalid_request" and "UTF-8" in reply.json()["error"]["message"]
    client.app.state.events.flush()
    assert [e.status for e in events(indexed, endpoint="/v1/chat/completions")] == [422, 422]


def test_a_stream_holds_its_cost_slot_until_it_ends(make_client, fake_llm, indexed):
    """Attacked after landing (issue 25), found holding: a streamed answer keeps its admission until its response
    ends, so slow streams cannot be stacked past the cost gate's concurrency."""
    import threading

    client = make_client(indexed.model_copy(update={"expensive_cost": 1, "expensive_concurrency": 1,
                                                    "expensive_queue": 0}), chat_model=_llm(fake_llm))
    fake_llm.mode = "stall"  # three words, then nothing until released
    first, pieces = {}, threading.Event()

    def streamed():
        with client.stream("POST", "/v1/chat/completions",
                           json=_chat("What happens to documents that fail validation?", stream=True)) as reply:
            text = ""
            for chunk in reply.iter_text():
                text += chunk
                if text.count('"content"') >= 4:  # the role chunk and three words
                    pieces.set()
            first["text"], first["status"] = text, reply.status_code

    thread = threading.Thread(target=streamed)
    thread.start()
    try:
        assert pieces.wait(30)
        refused = client.post("/v1/chat/completions", json=_chat("What is quarantined?"))
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
        assert 'ragops_rate_limited_total{scope="cost"} 1.0' in client.get("/metrics").text
    finally:
        fake_llm.released.set()
        thread.join(30)
    assert first["status"] == 200 and "[DONE]" in first["text"]
    assert client.post("/v1/chat/completions", json=_chat("What is quarantined?")).status_code == 200
