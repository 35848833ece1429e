"""Server-sent event streams of answers: one driver for `/v1/ask` with `stream: true` and for the streamed
`/v1/chat/completions`, each with its own encoder of the events.

However a stream ends, its request event is recorded exactly once: a finished answer with the answer's own status
(a fallback's, e.g. 503 for llm_unavailable, so that the canary gate counts it as the non-streamed reply would be
counted), a client that left mid-stream with status 499, and a failure after the headers went out with 500 (told to
the client as a last error event). A client that leaves cancels the answer where it waits, which closes the language
model's upstream stream; the cost-gate slot the answer held is released when the response ends.
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import AsyncIterator, Awaitable, Callable, Protocol

import anyio
from starlette.responses import StreamingResponse

from ragops.answer.pipeline import AnswerResult
from ragops.monitoring.aggregate import DISCONNECTED  # 499: the client closed the connection before the answer ended

log = logging.getLogger(__name__)
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # proxies must not buffer a stream


def sse(data: dict | str, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return (f"event: {event}\n" if event else "").encode() + f"data: {payload}\n\n".encode()


class Encoder(Protocol):
    def start(self) -> bytes: ...

    def piece(self, text: str) -> bytes: ...

    def end(self, result: AnswerResult, text: str) -> bytes: ...

    def failed(self, code: str, message: str) -> bytes: ...


class AskEncoder:
    """`/v1/ask` with `stream: true`: `start`, then `delta` events of text, then `done` with the whole reply (the
    AskResponse body, plus `status`: what the non-streamed reply's HTTP status would have been)."""

    def __init__(self, request_id: str):
        self.request_id = request_id

    def start(self) -> bytes:
        return sse({"request_id": self.request_id}, "start")

    def piece(self, text: str) -> bytes:
        return sse({"text": text}, "delta")

    def end(self, result: AnswerResult, text: str) -> bytes:
        body = result.to_dict() | {"answer": text, "request_id": self.request_id, "status": result.status,
                                   "truncated": result.truncated}
        if result.status >= 400:
            body["error"] = {"code": result.fallback, "message": text}
        return sse(body, "done")

    def failed(self, code: str, message: str) -> bytes:
        return sse({"error": {"code": code, "message": message}, "request_id": self.request_id}, "error")


@dataclass
class Outcome:
    """How a stream ended, for its request event: the result (None when there was none), the text sent, the status
    and the time since the request began (including condensing and waiting for admission)."""

    result: AnswerResult | None
    text: str
    status: int
    error: str | None = None
    latency_ms: float = 0.0


class Once:
    """Calls `finished` once, with the first outcome reported."""

    def __init__(self, finished: Callable[[Outcome], None], started: float,
                 on_first: Callable[[float], None] | None = None):
        self.finished = finished
        self.started = started
        self.on_first = on_first  # given the milliseconds to the first piece of text
        self.done = False

    def __call__(self, outcome: Outcome) -> None:
        if self.done:
            return
        self.done = True
        outcome.latency_ms = outcome.latency_ms or (time.perf_counter() - self.started) * 1000
        try:
            self.finished(outcome)
        except Exception:  # recording must not turn a delivered answer into a failure
            log.exception("the request event of a stream could not be recorded")

    def first_piece(self) -> None:
        if self.on_first is not None:
            self.on_first((time.perf_counter() - self.started) * 1000)

    def finished_with(self, result: AnswerResult) -> None:
        """A reply that was not streamed."""
        self(Outcome(result, result.answer, result.status, result.error))


async def events(answer: AsyncIterator[str | AnswerResult], encoder: Encoder, finish: Once,
                 reference: str) -> AsyncIterator[bytes]:
    """The response body: the encoder's events for the answer's pieces, recorded through `finish` at the end."""
    result, sent = None, []
    try:
        yield encoder.start()
        async for item in answer:
            if isinstance(item, AnswerResult):
                result = item
            else:
                if not sent:
                    finish.first_piece()
                sent.append(item)
                yield encoder.piece(item)
        if result is None:
            raise RuntimeError("the answer stream ended without its result")
        yield encoder.end(result, "".join(sent))
        finish(Outcome(result, "".join(sent), result.status, result.error))
    except Exception as exc:  # the headers went out with 200: the failure can only be told in the stream itself
        log.exception("request %s: the answer stream failed", reference)
        finish(Outcome(result, "".join(sent), 500, type(exc).__name__))
        yield encoder.failed("internal_error", "the answer failed unexpectedly; it was logged under request id "
                             f"{reference}")
    finally:  # also on cancellation (the client left): the answer and its upstream stream close now
        try:
            with anyio.CancelScope(shield=True):
                await answer.aclose()
        finally:
            finish(Outcome(result, "".join(sent), DISCONNECTED, "client_disconnected"))


class EventStream(StreamingResponse):
    """A text/event-stream response that, however it ends (finished, client gone, never started), closes its body
    iterator and then runs `on_close` (releasing what the answer held, recording a stream that never began)."""

    media_type = "text/event-stream"

    def __init__(self, content: AsyncIterator[bytes], on_close: Callable[[], Awaitable[None]], headers=None):
        super().__init__(content, headers=HEADERS | dict(headers or {}))
        self.on_close = on_close

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self.body_iterator.aclose()
                await self.on_close()


async def stream_response(answer: AsyncIterator[str | AnswerResult], encoder: Encoder, finish: Once,
                          stack: AsyncExitStack, reference: str, headers: dict) -> EventStream:
    """The response for an admitted answer; `stack` holds its admission until the response ends."""

    async def close() -> None:
        finish(Outcome(None, "", DISCONNECTED, "client_disconnected"))  # a no-op unless the body never ran
        await stack.aclose()

    return EventStream(events(answer, encoder, finish, reference), close, headers)


@dataclass
class Doors:
    """What the app's routes share with the streamed and OpenAI-compatible ones (serving/app.py builds it): the
    admission of a question (identity, rate limits, cost; an async context manager of (caller, decision,
    refusal)), the ready service, the request-event recorder, the JSON error reply and a reply's headers."""

    settings: object
    admitted: Callable
    ready: Callable[[], Awaitable[object]]
    record: Callable
    error: Callable
    headers: Callable
    count: Callable  # (endpoint, status): counted in /metrics without a request event (not a question)
    first_token: Callable  # (endpoint, milliseconds): a streamed answer's time to its first piece of text
    has_model: Callable[[], bool]  # a language model answers, and condenses follow-ups (charged by the cost gate)


def recorder(doors: Doors, request, endpoint: str, caller, asked: dict, routed: tuple[str, int | None],
             started: float, variant: str | None = None) -> Once:
    """Records a stream's outcome as its request event; `routed` (variant, release id) stands in when no result."""

    def finished(outcome: Outcome) -> None:
        result = outcome.result
        evidence = getattr(result, "evidence", None)
        doors.record(request.state.request_id, endpoint, outcome.status, outcome.latency_ms,
                     variant=variant or (result.variant if result else routed[0]),
                     release_id=result.release_id if result else routed[1],
                     fallback=result.fallback if result is not None and outcome.status == result.status else None,
                     error=outcome.error, chunk_ids=result.chunk_ids if result else None, caller=caller,
                     similarity=getattr(evidence, "similarity", None), coverage=getattr(evidence, "coverage", None),
                     **asked)

    return Once(finished, started, lambda ms: doors.first_token(endpoint, ms))


async def streamed_ask(request, body, doors: Doors):
    """`/v1/ask` with `stream: true`: admitted and routed as the JSON reply is, answered as events (AskEncoder)."""
    from ragops.answer.streaming import stream_answer

    started, stack = time.perf_counter(), AsyncExitStack()
    try:
        caller, decision, refusal = await stack.enter_async_context(
            doors.admitted(request, body.question, body.user_id, body.k))
        if refusal is not None:
            await stack.aclose()
            return refusal
        svc = await doors.ready()
        variant, release, _ = svc.route(caller.route)
        rid = request.state.request_id
        answer = stream_answer(svc, body.question, caller.route, k=body.k, reference=rid)
        finish = recorder(doors, request, "/v1/ask", caller, {"question": body.question}, (variant, release.id or None),
                          started)
        return await stream_response(answer, AskEncoder(rid), finish, stack, rid, doors.headers(caller, decision))
    except BaseException:
        with anyio.CancelScope(shield=True):
            await stack.aclose()
        raise
