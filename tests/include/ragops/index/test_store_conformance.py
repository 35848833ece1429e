"""One suite for every IndexStore backend; Weaviate joins when RAGOPS_WEAVIATE_URL is set."""

import os
import uuid

import numpy as np
import pytest

from ragops.index import IndexedChunk, IndexStore


def _vec(seed: int, dim: int = 8) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def _chunk(cid, doc, text, seed, ordinal=0):
    return IndexedChunk(cid, doc, f"h-{cid}", ordinal, "Heading", "Title", text, _vec(seed))


@pytest.fixture(params=["lance", "weaviate"])
def store(request, tmp_path) -> IndexStore:
    if request.param == "lance":
        from ragops.index.lance import LanceStore

        yield LanceStore(tmp_path / "lance", "chunks")
        return
    url = os.environ.get("RAGOPS_WEAVIATE_URL")
    if not url:
        pytest.skip("RAGOPS_WEAVIATE_URL is not set: no Weaviate server to run the conformance suite against")
    from ragops.index.weaviate import WeaviateStore

    s = WeaviateStore(url, f"RagopsTest{uuid.uuid4().hex[:8]}")
    yield s
    s.drop()


def test_apply_upserts_and_replaces_per_document(store):
    v1 = store.apply([_chunk("a1", "doc-a", "alpha apples", 1), _chunk("a2", "doc-a", "alpha avocado", 2),
                      _chunk("b1", "doc-b", "beta bananas", 3)], replace_docs=["doc-a", "doc-b"], delete_docs=[])
    assert store.count() == 3
    v2 = store.apply([_chunk("a3", "doc-a", "alpha apricot", 4, ordinal=1), _chunk("a1", "doc-a", "alpha apples", 1)],
                     replace_docs=["doc-a"], delete_docs=[])
    assert v2 > v1
    assert store.chunk_ids() == {"a1", "a3", "b1"}
    assert [h.chunk_id for h in store.document("doc-a")] == ["a1", "a3"]  # reading order, not insertion order


def test_delete_documents(store):
    store.apply([_chunk("a1", "doc-a", "alpha", 1), _chunk("b1", "doc-b", "beta", 2)], ["doc-a", "doc-b"], [])
    store.apply([], replace_docs=[], delete_docs=["doc-b"])
    assert store.chunk_ids() == {"a1"}


def test_dense_bm25_and_hybrid_search(store):
    chunks = [_chunk(f"c{i}", f"d{i % 3}", text, i) for i, text in enumerate(
        ["the refresh guard blocks mass deletes", "slack reports go to the outbox", "canary rollout gates",
         "rate limits with redis", "quarantine of bad documents"])]
    store.apply(chunks, [c.doc_uri for c in chunks], [])
    dense = store.search("anything", _vec(2), 2, "dense")
    assert dense[0].chunk_id == "c2" and dense[0].similarity == pytest.approx(1.0, abs=1e-4)
    bm25 = store.search("outbox", None, 2, "bm25")
    assert bm25[0].chunk_id == "c1"
    hybrid = store.search("quarantine documents", _vec(4), 3, "hybrid")
    assert hybrid[0].chunk_id == "c4" and len(hybrid) == 3


def test_checkout_pins_an_earlier_version(store):
    first = store.apply([_chunk("a1", "doc-a", "alpha", 1)], ["doc-a"], [])
    store.apply([_chunk("b1", "doc-b", "beta", 2)], ["doc-b"], [])
    assert store.count() == 2
    store.checkout(first)
    assert store.chunk_ids() == {"a1"}
