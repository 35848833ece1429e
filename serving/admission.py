"""Admission by cost: a bounded number of expensive questions at once, with a short queue; beyond it, 429.

The rate limiter counts requests, but a 2,000-character question costs some twenty times the CPU of a normal one
(query encoding and BM25 terms grow with its length), so a few callers within their request budgets could take every
core. A question's cost is estimated before any work, as its approximate tokens times k; one at or above
RAGOPS_EXPENSIVE_COST takes one of RAGOPS_EXPENSIVE_CONCURRENCY slots, or waits in a queue of
RAGOPS_EXPENSIVE_QUEUE, or is refused. Cheap questions never wait here. The bound is per process, as the CPU it
protects is.

A chat follow-up that a language model condenses first (ragops.answer.conversation) costs a second model call that
reads the earlier turns: its tokens are added to the question's cost (`condensing_cost`), so a short question after
long turns is admitted as what it is, not as the short question alone.
"""

from __future__ import annotations

import math
import time
from contextlib import asynccontextmanager

import anyio

from ragops.answer.conversation import condensing_chars
from serving.ratelimit import Decision

CHARS_PER_TOKEN = 4  # by characters, not words: a question without spaces still costs per wordpiece


def cost(question: str, k: int) -> int:
    """Estimated work units of a question: approximate tokens x passages retrieved."""
    return math.ceil(len(question) / CHARS_PER_TOKEN) * k


def condensing_cost(earlier: list[str], question: str) -> int:
    """Estimated work units of the call that condenses a follow-up: the approximate tokens the model reads (read once,
    no passages). 0 when the question is not condensed."""
    return math.ceil(condensing_chars(earlier, question) / CHARS_PER_TOKEN)


class CostGate:
    def __init__(self, threshold: int, concurrency: int, queue: int, retry_after_s: int = 1):
        self.threshold = threshold
        self.concurrency = concurrency
        self.queue = queue
        self.retry_after_s = retry_after_s
        self._slots = anyio.Semaphore(concurrency)
        self._waiting = 0

    @asynccontextmanager
    async def admit(self, units: int):
        """Yield None when admitted (holding a slot while expensive), else the refusal's Decision (scope `cost`)."""
        if units < self.threshold:
            yield None
            return
        if self._slots.value == 0 and self._waiting >= self.queue:
            yield Decision(False, self.concurrency, 0, time.time() + self.retry_after_s, "cost")
            return
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            yield None
        finally:
            self._slots.release()
