"""Chat models: any OpenAI-compatible endpoint through the openai SDK, behind a circuit breaker."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import AsyncIterator, Callable, Protocol

import anyio

from ragops.config import mask_urls
from ragops.errors import LLMUnavailable


class ChatModel(Protocol):
    name: str

    async def complete(self, system: str, user: str) -> str: ...

    def stream(self, system: str, user: str) -> AsyncIterator[str]:
        """The answer's text pieces as the model writes them; LLMUnavailable on failure, before or mid-stream."""
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
        self.max_chars = max_chars  # a streamed answer's size bound: the deadline bounds its time only
        self.client = AsyncOpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout_s,
                                  max_retries=max_retries)
        self.breaker = breaker or CircuitBreaker()

    async def complete(self, system: str, user: str) -> str:
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
        self.breaker.success()
        return text.strip()

    async def stream(self, system: str, user: str) -> AsyncIterator[str]:
        """Stream the reply (OpenAI server-sent events) under the same total deadline as `complete`: each wait for the
        next piece gets what is left of it. Closing this generator (a client that left) closes the upstream response."""
        self.breaker.before()
        deadline, stream, pieces, written, finished = time.monotonic() + self.deadline_s, None, 0, 0, False
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
                    finished = finished or bool(chunk.choices and chunk.choices[0].finish_reason)
                    text = chunk.choices[0].delta.content if chunk.choices and chunk.choices[0].delta else None
                    if not pieces:  # leading whitespace is dropped, as `complete` strips it: a blank answer is none
                        text = text.lstrip() if text else None
                    if text:
                        pieces, room = pieces + 1, self.max_chars - written
                        written += len(text)
                        yield text[:room]
                        if written > self.max_chars:  # a runaway model: what fits was sent, the upstream closes
                            raise LLMUnavailable(f"the language model's answer ran over {self.max_chars} characters")
                if not pieces:
                    raise LLMUnavailable("the language model returned an empty answer")
                if not finished:  # the connection closed mid-answer: no last chunk saying why the model stopped
                    raise LLMUnavailable("the language model's stream ended before the answer finished")
        finally:
            if stream is not None:
                with anyio.CancelScope(shield=True):  # also when cancelled: the upstream connection is released now
                    await stream.close()
        self.breaker.success()

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


def build_chat_model(settings) -> ChatModel | None:
    if not settings.llm_base_url:
        return None
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    return OpenAIChatModel(settings.llm_base_url, settings.llm_model, key, settings.llm_timeout_s,
                           deadline_s=settings.llm_deadline_s, max_chars=settings.llm_answer_max_chars)
