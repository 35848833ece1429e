"""Query embedding for serving: concurrent queries are encoded together, hot queries come from a bounded LRU.

Batching is leader/follower, with no background thread: the first caller to find no batch running encodes
whatever is queued (itself included, up to `max_batch`), and the others wait for their result. While a batch
runs, new queries queue up and go together in the next one, so under load batches form by themselves and a lone
query never waits. `window_s` lets a leader wait a little for more queries, but only when others are already
queued: at concurrency 1 it costs nothing.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Sequence

import numpy as np

EncodeFn = Callable[[Sequence[str]], np.ndarray]


class _Request:
    __slots__ = ("text", "vector", "error", "done")

    def __init__(self, text: str):
        self.text, self.vector, self.error, self.done = text, None, None, False


class MicroBatcher:
    """Encode single texts from many threads in shared batches; an encoder error reaches every waiter of its batch."""

    def __init__(self, encode: EncodeFn, max_batch: int = 32, window_s: float = 0.0):
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._encode, self.max_batch, self.window_s = encode, max_batch, window_s
        self._pending: list[_Request] = []
        self._leading = False
        self._cond = threading.Condition()
        self.batches = 0  # how many encoder calls were made (observability and tests)

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._pending)

    def encode(self, text: str) -> np.ndarray:
        request = _Request(text)
        with self._cond:
            self._pending.append(request)
            while not request.done:
                if self._leading:
                    self._cond.wait()
                    continue
                self._leading = True
                if self.window_s > 0 and 1 < len(self._pending) < self.max_batch:
                    self._cond.wait(self.window_s)  # others are queued: give stragglers one short window
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
                self._cond.release()
                try:
                    self._run(batch)
                finally:
                    self._cond.acquire()
                    self._leading = False
                    self._cond.notify_all()
        if request.error is not None:
            raise request.error
        return request.vector

    def _run(self, batch: list[_Request]) -> None:
        try:
            vectors = self._encode([r.text for r in batch])
            if len(vectors) != len(batch):
                raise RuntimeError(f"the encoder returned {len(vectors)} vectors for {len(batch)} texts")
        except BaseException as exc:  # handed to every waiter of this batch, each of which raises it
            for r in batch:
                r.error, r.done = exc, True
            self.batches += 1
            return
        for r, vector in zip(batch, vectors):
            r.vector, r.done = vector, True
        self.batches += 1


class QueryCache:
    """A bounded LRU of query vectors; the key carries the model and precision, so vectors never mix."""

    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: tuple[str, str]) -> np.ndarray | None:
        with self._lock:
            vector = self._items.get(key)
            if vector is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return vector

    def put(self, key: tuple[str, str], vector: np.ndarray) -> None:
        if self.size <= 0:
            return
        vector = np.array(vector, dtype=np.float32)
        vector.setflags(write=False)  # shared between requests: nobody may change it in place
        with self._lock:
            self._items[key] = vector
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


def normalize_query(text: str, lowercase: bool) -> str:
    """Whitespace never changes an embedding; case does not either for an uncased model."""
    text = " ".join(text.split())
    return text.lower() if lowercase else text


class QueryEncoder:
    """What the retriever calls per query: the cache first, then the shared batcher."""

    def __init__(self, embedder, *, batching: bool = True, max_batch: int = 32, window_s: float = 0.001,
                 cache_size: int = 4096):
        self.embedder = embedder
        self.key = embedder.cache_key
        self.lowercase = embedder.lowercases
        self.cache = QueryCache(cache_size)
        self.batcher = MicroBatcher(embedder.encode, max_batch, window_s) if batching else None

    @classmethod
    def from_settings(cls, settings, embedder) -> "QueryEncoder":
        return cls(embedder, batching=settings.query_batching, max_batch=settings.query_batch_max,
                   window_s=settings.query_batch_window_ms / 1000, cache_size=settings.query_cache_size)

    def encode(self, query: str) -> np.ndarray:
        key = (self.key, normalize_query(query, self.lowercase))
        vector = self.cache.get(key)
        if vector is None:
            vector = self.batcher.encode(key[1]) if self.batcher else self.embedder.encode([key[1]])[0]
            self.cache.put(key, vector)
        return vector
