"""The stream driver: one request event however a stream ends (finished, failed after the headers, client gone)."""

import asyncio
import json

from ragops.answer.pipeline import AnswerResult
from serving.streams import DISCONNECTED, AskEncoder, Once, events


def _result(**kw):
    return AnswerResult(**({"answer": "text", "citations": [], "fallback": None, "status": 200, "variant": "stable",
                            "release": "live", "release_id": 1, "latency_ms": 5.0} | kw))


def _drive(answer, stop_after=None):
    outcomes = []

    async def run():
        body = events(answer, AskEncoder("rid"), Once(outcomes.append, 0.0), "rid")
        sent = []
        async for chunk in body:
            sent.append(chunk)
            if stop_after is not None and len(sent) == stop_after:
                await body.aclose()  # what the response does when the client leaves
                break
        return sent

    return asyncio.run(run()), outcomes


def test_a_finished_stream_is_recorded_once_with_the_answers_status():
    async def answer():
        yield "Hello "
        yield "world"
        yield _result(answer="Hello world", fallback="tool_failed", status=200)

    sent, outcomes = _drive(answer())
    done = json.loads(sent[-1].decode().split("data: ", 1)[1])
    assert sent[0].startswith(b"event: start") and done["answer"] == "Hello world" and done["fallback"] == "tool_failed"
    assert [(o.status, o.text) for o in outcomes] == [(200, "Hello world")]


def test_a_failure_after_the_headers_is_an_error_event_and_a_500_event():
    async def answer():
        yield "Hello "
        raise KeyError("boom")

    sent, outcomes = _drive(answer())
    assert sent[-1].startswith(b"event: error") and b"internal_error" in sent[-1] and b"boom" not in sent[-1]
    assert [(o.status, o.error, o.text) for o in outcomes] == [(500, "KeyError", "Hello ")]


def test_a_client_that_leaves_closes_the_answer_and_is_recorded_as_499():
    closed = []

    async def answer():
        try:
            yield "Hello "
            yield "world"
            yield _result()
        finally:
            closed.append(True)

    sent, outcomes = _drive(answer(), stop_after=2)  # the start event and one piece
    assert closed == [True]
    assert [(o.status, o.error, o.result) for o in outcomes] == [(DISCONNECTED, "client_disconnected", None)]
