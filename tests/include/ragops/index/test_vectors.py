"""Vectors checked at the store's door: nothing without a cosine distance is written, or searched for silently."""

import dataclasses

import numpy as np
import pytest

from ragops.errors import StoreUnavailable
from ragops.index.ann import AnnPolicy
from ragops.index.lance import LanceStore
from ragops.index import IndexedChunk
from ragops.index.vectors import checked_query, checked_rows

DIM = 32


def _chunks(n: int, seed: int, prefix: str = "c") -> list[IndexedChunk]:
    v = np.random.default_rng(seed).normal(size=(n, DIM))
    v = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    return [IndexedChunk(f"{prefix}{i}", f"file:///d/{prefix}{i // 10}.md", f"h{prefix}{i}", i % 10, "H", "T",
                         f"text {prefix}{i}", v[i]) for i in range(n)]


BAD = {"nan": np.full(DIM, np.nan, np.float32), "inf": np.full(DIM, np.inf, np.float32),
       "zero": np.zeros(DIM, np.float32)}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_a_write_with_an_unusable_vector_is_refused_whole_and_names_the_chunk(tmp_path, kind):
    store = LanceStore(tmp_path, "chunks", ann=AnnPolicy(min_rows=500))
    chunks = _chunks(600, 1)
    store.rebuild(chunks)
    before = store.version()
    bad = dataclasses.replace(_chunks(1, 2, prefix="n")[0], vector=BAD[kind])
    with pytest.raises(StoreUnavailable, match="'n0'"):
        store.apply(_chunks(3, 3, prefix="m") + [bad], [], [])
    assert store.version() == before and store.count() == 600  # nothing of the write landed


def test_a_write_of_mixed_lengths_is_refused():
    with pytest.raises(StoreUnavailable, match="one length"):
        checked_rows([np.ones(4), np.ones(5)], ["a", "b"])
    assert checked_rows([np.ones(4), np.ones(4)], ["a", "b"]).dtype == np.float32


@pytest.mark.parametrize("kind", sorted(BAD) + ["length"])
def test_an_unusable_query_vector_is_an_error_not_an_empty_answer(tmp_path, kind):
    store = LanceStore(tmp_path, "chunks", ann=AnnPolicy(min_rows=500))
    chunks = _chunks(600, 1)
    store.rebuild(chunks)
    vector = np.ones(DIM + 3, np.float32) if kind == "length" else BAD[kind]
    for mode in ("dense", "hybrid"):
        with pytest.raises(StoreUnavailable, match="query vector"):
            store.search("text c1", vector, 5, mode)
    assert store.search("text c1", chunks[1].vector, 1, "dense")[0].chunk_id == "c1"
    assert store.search("text c1", None, 1, "bm25")  # BM25 needs no vector


def test_a_missing_query_vector_is_refused():
    with pytest.raises(StoreUnavailable, match="needs a query vector"):
        checked_query(None)
