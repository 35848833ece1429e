"""The query batcher and cache: same vectors as one-by-one encoding, errors reach every waiter, no unbounded wait.

Nothing here depends on timing: the encoder is gated by events the test controls, and the test waits for the
batcher's observable state (how many queries are queued) before releasing it.
"""

import threading

import numpy as np
import pytest

from ragops.answer.query_encoding import MicroBatcher, QueryCache, QueryEncoder, normalize_query


class GatedEncoder:
    """Deterministic vectors per text; each call blocks until the test opens the gate, and is recorded."""

    def __init__(self, fail_on: str | None = None):
        self.calls: list[list[str]] = []
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.fail_on = fail_on

    def __call__(self, texts):
        self.calls.append(list(texts))
        self.entered.set()
        assert self.gate.wait(30), "the test never opened the gate"
        if self.fail_on and self.fail_on in texts:
            raise RuntimeError(f"encoder failed on {self.fail_on}")
        return np.stack([vector(t) for t in texts])


def vector(text: str) -> np.ndarray:
    rng = np.random.default_rng(sum(map(ord, text)))
    return rng.standard_normal(8).astype(np.float32)


def _submit(batcher, text, out):
    def run():
        try:
            out[text] = batcher.encode(text)
        except Exception as exc:  # noqa: BLE001 - the test inspects what each waiter got
            out[text] = exc
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _until(predicate):
    event = threading.Event()
    for _ in range(3000):
        if predicate():
            return
        event.wait(0.01)
    raise AssertionError("the batcher never reached the expected state")


def test_queued_queries_are_encoded_together_and_match_single_encoding():
    encoder = GatedEncoder()
    batcher, out = MicroBatcher(encoder, max_batch=8), {}
    first = _submit(batcher, "q0", out)
    assert encoder.entered.wait(30)  # q0 leads alone; the encoder is now busy
    others = [_submit(batcher, f"q{i}", out) for i in range(1, 6)]
    _until(lambda: batcher.pending == 5)
    encoder.gate.set()
    for thread in [first, *others]:
        thread.join(30)
    assert encoder.calls[0] == ["q0"] and sorted(encoder.calls[1]) == [f"q{i}" for i in range(1, 6)]
    assert len(encoder.calls) == 2
    for i in range(6):
        assert np.array_equal(out[f"q{i}"], vector(f"q{i}"))  # each waiter gets its own vector, not a neighbour's


def test_batches_never_exceed_max_batch():
    encoder = GatedEncoder()
    batcher, out = MicroBatcher(encoder, max_batch=2), {}
    first = _submit(batcher, "a", out)
    assert encoder.entered.wait(30)
    others = [_submit(batcher, t, out) for t in ("b", "c", "d", "e")]
    _until(lambda: batcher.pending == 4)
    encoder.gate.set()
    for thread in [first, *others]:
        thread.join(30)
    assert [len(c) for c in encoder.calls] == [1, 2, 2]
    assert all(np.array_equal(out[t], vector(t)) for t in "abcde")


def test_an_encoder_error_reaches_every_waiter_of_its_batch_and_only_them():
    encoder = GatedEncoder(fail_on="bad")
    batcher, out = MicroBatcher(encoder, max_batch=8), {}
    first = _submit(batcher, "good", out)
    assert encoder.entered.wait(30)
    others = [_submit(batcher, t, out) for t in ("bad", "also")]
    _until(lambda: batcher.pending == 2)
    encoder.gate.set()
    for thread in [first, *others]:
        thread.join(30)
    assert np.array_equal(out["good"], vector("good"))
    assert isinstance(out["bad"], RuntimeError) and isinstance(out["also"], RuntimeError)
    assert "encoder failed on bad" in str(out["also"])
    encoder.fail_on = None  # the batcher is not wedged by a failure: the next query is served
    assert np.array_equal(batcher.encode("after"), vector("after"))


def test_a_lone_query_is_encoded_at_once_even_with_a_long_window():
    """The window applies only when others are queued: a single caller never waits for company."""
    calls = []
    batcher = MicroBatcher(lambda texts: calls.append(list(texts)) or np.stack([vector(t) for t in texts]),
                           max_batch=8, window_s=3600)
    assert np.array_equal(batcher.encode("alone"), vector("alone"))
    assert calls == [["alone"]]


def test_a_wrong_vector_count_is_an_error_not_a_misassignment():
    batcher = MicroBatcher(lambda texts: np.zeros((len(texts) + 1, 4), np.float32))
    with pytest.raises(RuntimeError, match="2 vectors for 1 texts"):
        batcher.encode("x")


def test_cache_is_bounded_lru_and_keyed_by_model_and_precision():
    cache = QueryCache(2)
    a, b, c = (np.full(3, i, np.float32) for i in range(3))
    cache.put(("m", "a"), a)
    cache.put(("m", "b"), b)
    assert cache.get(("m", "a")) is not None  # a is now the most recent
    cache.put(("m", "c"), c)
    assert cache.get(("m", "b")) is None and len(cache) == 2
    assert cache.get(("m#bfloat16", "a")) is None  # another precision never reads float32's vector
    with pytest.raises(ValueError):
        cache.get(("m", "a"))[0] = 5  # shared vectors are read-only


def test_query_encoder_with_the_real_model_matches_single_encoding(embedder):
    encoder = QueryEncoder(embedder, cache_size=16)
    texts = ["How do I refresh the index?", "where do slack reports go"]
    direct = embedder.encode(texts)
    batched = np.stack([encoder.encode(t) for t in texts])
    assert np.allclose(batched, direct, atol=1e-5)
    again = encoder.encode("  How do I   REFRESH the index? ")  # whitespace and case: the uncased model's same query
    assert encoder.cache.hits == 1 and np.allclose(again, direct[0], atol=1e-5)


def test_normalize_keeps_case_for_cased_models():
    assert normalize_query(" A  b ", lowercase=False) == "A b"
    assert normalize_query(" A  b ", lowercase=True) == "a b"
