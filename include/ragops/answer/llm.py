"""Chat models: any OpenAI-compatible endpoint through the openai SDK, behind a circuit breaker."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import AsyncIterator, Callable, Protocol

import anyio

from ragops.config import mask_urls
from ragops.errors import LLMUnavailable


LENGTH = "length"  # why an answer is not whole: the model stopped at its own token limit (finish_reason "length")
SIZE = "size"  # ... it ran over RAGOPS_LLM_ANSWER_MAX_CHARS
FILTERED = "content_filter"  # ... the provider's content filter withheld the rest (finish_reason "content_filter")


class AnswerCut(LLMUnavailable):
    """The model's answer is not whole, but what it wrote stands: `kept` (for a stream, the pieces already yielded).
    `failed`: the model misbehaved (SIZE: it ran on; llm_unavailable, a failure for the breaker) or not (LENGTH: it
    stopped at its own token limit, or FILTERED: a content filter withheld the rest; the answer is served, marked
    truncated, and the breaker counts a success: the model works, it was asked something it would not finish). A
    caller that only wants whole answers (condensing) treats it as any LLMUnavailable."""

    def __init__(self, message: str, kept: str, reason: str):
        super().__init__(message)
        self.kept, self.reason, self.failed = kept, reason, reason not in (LENGTH, FILTERED)


class ChatModel(Protocol):
    name: str

    async def complete(self, system: str, user: str) -> str:
        """The whole answer; LLMUnavailable on failure, AnswerCut when it is not whole."""
        ...

    def stream(self, system: str, user: str) -> AsyncIterator[str]:
        """The answer's text pieces as the model writes them; LLMUnavailable on failure, before or mid-stream, and
        AnswerCut after the last piece when the answer is not whole."""
        ...


class CircuitBreaker:
    """Open after `threshold` consecutive failures; after `reset_s` let one trial call through (half-open)."""

    def __init__(self, threshold: int = 5, reset_s: float = 30.0, clock: Callable[[], float] = time.monotonic):
        self.threshold = threshold
        self.reset_s = reset_s
        self.clock = clock
        self.failures = 0
        self.opened_at: float | None = None
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half_open" if self.clock() - self.opened_at >= self.reset_s else "open"

    def before(self) -> None:
        with self._lock:
            if self.state == "open":
                raise LLMUnavailable(f"the circuit to the language model is open for {self.reset_s:.0f} s after "
                                     f"{self.failures} consecutive failures")
            if self.state == "half_open":
                self.opened_at = self.clock()  # one trial at a time; others still see "open"

    def success(self) -> None:
        with self._lock:
            self.failures, self.opened_at = 0, None

    def failure(self) -> None:
        with self._lock:
            self.failures += 1
            if self.failures >= self.threshold:
                self.opened_at = self.clock()


class OpenAIChatModel:
    """Per-attempt timeouts and bounded retries with backoff come from the openai SDK; `deadline_s` bounds the whole
    call, retries included, and the breaker stops hammering an outage."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout_s: float = 10.0,
                 max_retries: int = 2, breaker: CircuitBreaker | None = None, deadline_s: float = 15.0,
                 max_chars: int = 20000):
        from openai import AsyncOpenAI

        self.name = model
        self.deadline_s = deadline_s
        self.max_chars = max_chars  # an answer's size bound: the deadline bounds its time only
        self.client = AsyncOpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout_s,
                                  max_retries=max_retries)
        self.breaker = breaker or CircuitBreaker()

    async def complete(self, system: str, user: str) -> str:
        """The answer, stripped. The SDK reads the reply whole (within the deadline); what is kept of it is bounded
        by `max_chars`, as a stream is."""
        self.breaker.before()
        with self._accounted("answer"):
            with anyio.fail_after(self.deadline_s):
                reply = await self.client.chat.completions.create(
                    model=self.name, temperature=0,
                    messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
                )
            text = reply.choices[0].message.content if reply.choices else None
            if not text or not text.strip():
                raise LLMUnavailable("the language model returned an empty answer")
            text = text.strip()
            if len(text) > self.max_chars:
                raise self._ran_over(text[:self.max_chars])
        self.breaker.success()
        if reply.choices[0].finish_reason in (LENGTH, FILTERED):
            raise _stopped(text, reply.choices[0].finish_reason)
        return text

    async def stream(self, system: str, user: str) -> AsyncIterator[str]:
        """Stream the reply (OpenAI server-sent events) under the same total deadline as `complete`: each wait for the
        next piece gets what is left of it. Closing this generator (a client that left) closes the upstream response."""
        self.breaker.before()
        deadline, stream, pieces, written, finished = time.monotonic() + self.deadline_s, None, 0, 0, None
        try:
            with self._accounted("finish"):
                with anyio.fail_after(self.deadline_s):
                    stream = await self.client.chat.completions.create(
                        model=self.name, temperature=0, stream=True,
                        messages=[{"role": "system", "content": system}, {"role": "user", "content": user}])
                while True:
                    with anyio.fail_after(max(0.0, deadline - time.monotonic())):
                        try:
                            chunk = await stream.__anext__()
                        except StopAsyncIteration:
                            break
                    text = chunk.choices[0].delta.content if chunk.choices and chunk.choices[0].delta else None
                    if not pieces:  # leading whitespace is dropped, as `complete` strips it: a blank answer is none
                        text = text.lstrip() if text else None
                    if text:
                        pieces, room = pieces + 1, self.max_chars - written
                        written += len(text)
                        yield text[:room]
                        if written > self.max_chars:  # a runaway model: what fits was sent, the upstream closes
                            raise self._ran_over("")
                    if chunk.choices and chunk.choices[0].finish_reason:
                        finished = chunk.choices[0].finish_reason
                if not pieces:
                    raise LLMUnavailable("the language model returned an empty answer")
                if not finished:  # the connection closed mid-answer: no last chunk saying why the model stopped
                    raise LLMUnavailable("the language model's stream ended before the answer finished")
        finally:
            if stream is not None:
                with anyio.CancelScope(shield=True):  # also when cancelled: the upstream connection is released now
                    await stream.close()
        self.breaker.success()
        if finished in (LENGTH, FILTERED):
            raise _stopped("", finished)

    def _ran_over(self, kept: str) -> AnswerCut:
        return AnswerCut(f"the language model's answer ran over {self.max_chars} characters", kept, SIZE)

    @contextmanager
    def _accounted(self, verb: str):
        """A failed call counts against the breaker and becomes LLMUnavailable, saying why (URLs masked)."""
        import openai

        try:
            yield
        except TimeoutError:
            self.breaker.failure()
            raise LLMUnavailable(f"the language model did not {verb} within {self.deadline_s:g} s") from None
        except (openai.APIError, ValueError, TypeError, AttributeError, IndexError) as exc:
            self.breaker.failure()
            raise LLMUnavailable(f"the language model call failed: {type(exc).__name__}: {mask_urls(str(exc))[:200]}") \
                from exc
        except LLMUnavailable:
            self.breaker.failure()
            raise


def _stopped(kept: str, reason: str) -> AnswerCut:
    why = "stopped at its token limit" if reason == LENGTH else "had the rest withheld by its content filter"
    return AnswerCut(f"the language model {why} (finish_reason {reason})", kept, reason)


def build_chat_model(settings) -> ChatModel | None:
    if not settings.llm_base_url:
        return None
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    return OpenAIChatModel(settings.llm_base_url, settings.llm_model, key, settings.llm_timeout_s,
                           deadline_s=settings.llm_deadline_s, max_chars=settings.llm_answer_max_chars)
