"""One suite for every index backend, through the IndexStore and IndexCatalog protocols only.

LanceDB always runs. Weaviate joins when RAGOPS_WEAVIATE_URL is set (docs/production.md: which image, which command);
each run works under its own collection prefix and removes everything it made.
"""

import os
import uuid

import numpy as np
import pytest

from ragops.errors import StoreUnavailable
from ragops.index import IndexCatalog, IndexedChunk, IndexStore
from ragops.index.ann import AnnKnob, AnnPolicy

ANN = AnnPolicy(min_rows=2_000)  # a threshold low enough that the cases above it run in seconds

A, B = "file:///docs/a/guide.md", "file:///docs/b/guide.md"  # every token shared but one


def _vec(seed: int, dim: int = 8) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def _chunk(cid, doc, text, seed, ordinal=0, vector=None):
    return IndexedChunk(cid, doc, f"h-{cid}", ordinal, "Heading", "Title", text, _vec(seed) if vector is None else vector)


@pytest.fixture(params=["lance", "weaviate"])
def catalog(request, tmp_path) -> IndexCatalog:
    if request.param == "lance":
        from ragops.index.lance import LanceCatalog

        yield LanceCatalog(tmp_path / "lance", ANN)
        return
    from ragops.config import Settings

    cfg = Settings()
    if not cfg.weaviate_url:
        pytest.skip("RAGOPS_WEAVIATE_URL is not set: no Weaviate server to run the conformance suite against")
    from ragops.index.weaviate import WeaviateCatalog, connect_url

    key = cfg.weaviate_api_key.get_secret_value() if cfg.weaviate_api_key else None
    cat = WeaviateCatalog(lambda: connect_url(cfg.weaviate_url, cfg.weaviate_grpc_port, key),
                          prefix=f"Test{uuid.uuid4().hex[:12]}", ann=ANN)
    yield cat
    cat.acquire()
    try:
        cat.client().alias.delete(alias_name=cat.alias)
        for collection in cat.collections():
            for version in cat.versions(collection):
                cat.delete(collection, version)
    finally:
        cat.release()


@pytest.fixture
def store(catalog) -> IndexStore:
    s = catalog.open("chunks")
    yield s
    s.close()


def test_backends_satisfy_the_protocols(catalog, store):
    assert isinstance(catalog, IndexCatalog) and isinstance(store, IndexStore)
    assert catalog.live_pointer in ("registry", "alias")


def test_apply_upserts_and_replaces_per_document(store):
    v1 = store.apply([_chunk("a1", A, "alpha apples", 1), _chunk("a2", A, "alpha avocado", 2),
                      _chunk("b1", B, "beta bananas", 3)], replace_docs=[A, B], delete_docs=[])
    assert store.count() == 3
    v2 = store.apply([_chunk("a3", A, "alpha apricot", 4, ordinal=1), _chunk("a1", A, "alpha apples", 1)],
                     replace_docs=[A], delete_docs=[])
    assert v2 > v1
    assert store.chunk_ids() == {"a1", "a3", "b1"}
    assert [h.chunk_id for h in store.document(A)] == ["a1", "a3"]  # reading order, not insertion order


def test_delete_documents(store):
    store.apply([_chunk("a1", A, "alpha", 1), _chunk("b1", B, "beta", 2)], [A, B], [])
    store.apply([], replace_docs=[], delete_docs=[B])
    assert store.chunk_ids() == {"a1"}


def test_uris_sharing_all_tokens_but_one_are_kept_apart(store):
    store.apply([_chunk("a0", A, "install the guide", 1), _chunk("a1", A, "configure the guide", 2, ordinal=1),
                 _chunk("b0", B, "upgrade the guide", 3), _chunk("b1", B, "remove the guide", 4, ordinal=1)], [A, B], [])
    store.apply([], replace_docs=[], delete_docs=[A])
    assert store.chunk_ids() == {"b0", "b1"}  # deleting A left B whole
    assert [h.chunk_id for h in store.document(B)] == ["b0", "b1"] and store.document(A) == []
    store.apply([_chunk("a2", A, "install again", 5)], replace_docs=[A], delete_docs=[])
    store.apply([_chunk("b2", B, "upgrade again", 6)], replace_docs=[B], delete_docs=[])
    assert store.chunk_ids() == {"a2", "b2"}  # replacing one document never touched the other
    assert [h.chunk_id for h in store.document(A)] == ["a2"]


def test_dense_bm25_and_hybrid_search(store):
    chunks = [_chunk(f"c{i}", f"file:///d/{i % 3}.md", text, i) for i, text in enumerate(
        ["the refresh guard blocks mass deletes", "slack reports go to the outbox", "canary rollout gates",
         "rate limits with redis", "quarantine of bad documents"])]
    store.apply(chunks, [c.doc_uri for c in chunks], [])
    dense = store.search("anything", _vec(2), 2, "dense")
    assert dense[0].chunk_id == "c2" and dense[0].similarity == pytest.approx(1.0, abs=1e-4)
    assert dense[0].score == pytest.approx(dense[0].similarity)
    bm25 = store.search("outbox", None, 2, "bm25")
    assert bm25[0].chunk_id == "c1" and bm25[0].similarity is None
    hybrid = store.search("quarantine documents", _vec(4), 3, "hybrid")
    assert hybrid[0].chunk_id == "c4" and len(hybrid) == 3
    # first in both lists: the reciprocal rank fusion score is the same on every backend
    assert hybrid[0].score == pytest.approx(2 / 61) and hybrid[0].similarity == pytest.approx(1.0, abs=1e-4)


def test_checkout_pins_an_earlier_version(store):
    first = store.apply([_chunk("a1", A, "alpha", 1)], [A], [])
    store.apply([_chunk("b1", B, "beta", 2)], [B], [])
    assert store.count() == 2
    store.checkout(first)
    assert store.chunk_ids() == {"a1"}


def test_scan_streams_every_row_in_bounded_batches(catalog, store):
    assert list(store.scan(["chunk_id"], 2)) == []  # nothing written yet
    v1 = store.apply([_chunk(f"a{i}", A, f"alpha {i}", i, ordinal=i) for i in range(5)], [A], [])
    store.apply([], replace_docs=[], delete_docs=[A])
    reader = catalog.open("chunks", v1)
    try:
        batches = list(reader.scan(["chunk_id", "vector"], 2))
        assert all(1 <= len(b) <= 2 for b in batches) and set(batches[0][0]) == {"chunk_id", "vector"}
        assert sorted(r["chunk_id"] for b in batches for r in b) == [f"a{i}" for i in range(5)]
        assert len(batches[0][0]["vector"]) == 8
    finally:
        reader.close()
    assert list(store.scan(["chunk_id"], 2)) == []


def test_a_pinned_read_still_sees_its_version_after_later_writes(catalog, store):
    v1 = store.apply([_chunk("a1", A, "alpha apples orchard", 1), _chunk("b1", B, "beta bananas", 2)], [A, B], [])
    reader = catalog.open("chunks", v1)
    try:
        store.apply([_chunk("a2", A, "alpha replaced", 3)], replace_docs=[A], delete_docs=[])
        store.apply([], replace_docs=[], delete_docs=[B])
        assert store.chunk_ids() == {"a2"}
        assert reader.version() == v1 and reader.count() == 2
        assert reader.chunk_ids() == {"a1", "b1"}
        assert [h.chunk_id for h in reader.document(A)] == ["a1"]
        assert reader.search("orchard", _vec(1), 1, "hybrid")[0].chunk_id == "a1"
        with pytest.raises(StoreUnavailable):
            reader.apply([_chunk("x", A, "x", 9)], [A], [])  # a pinned store is read-only
    finally:
        reader.close()


def test_blue_green_build_promote_and_roll_back(catalog):
    def expect(collection, version):
        return (collection, version) if catalog.live_pointer == "alias" else None

    blue = catalog.open("blue")
    v_blue = blue.rebuild([_chunk("blue1", A, "the blue passage about lighthouses", 1)])
    catalog.promote("blue", v_blue)
    assert catalog.live() == expect("blue", v_blue)

    green = catalog.open("green")  # built beside the live one
    v_green = green.rebuild([_chunk("green1", A, "the green passage about orchards", 2),
                             _chunk("green2", B, "more orchards", 3)])
    assert {"blue", "green"} <= set(catalog.collections())
    assert catalog.open("blue", v_blue).chunk_ids() == {"blue1"}  # the live one was not touched

    catalog.promote("green", v_green)
    assert catalog.live() == expect("green", v_green)
    catalog.promote("blue", v_blue)  # rollback: the pointer moves back, nothing is rebuilt or copied
    assert catalog.live() == expect("blue", v_blue)
    back = catalog.open("blue", v_blue)
    assert back.search("lighthouses", _vec(1), 1, "hybrid")[0].chunk_id == "blue1"

    with pytest.raises(StoreUnavailable):
        catalog.promote("missing", 1)
    with pytest.raises(StoreUnavailable):
        catalog.open("green", v_green + 100)
    green.drop()
    assert "green" not in catalog.collections()
    for s in (blue, green, back):
        s.close()


def test_hybrid_finds_a_rare_exact_term_and_a_paraphrase(catalog, embedder):
    passages = {
        "guard": "A refresh that would remove more than a fifth of the indexed documents is blocked.",
        "code": "Flash the Q7ZK9 adapter firmware before the first start.",
        "slack": "Reports are posted to the team channel, or written to a local outbox without a token.",
        "canary": "The candidate release first serves one user in ten, chosen by a stable hash.",
        "limits": "Callers over their request budget get a short wait message and a Retry-After header.",
    }
    vectors = embedder.encode(list(passages.values()))
    store = catalog.open("passages")
    try:
        store.apply([_chunk(cid, f"file:///kb/{cid}.md", text, 0, vector=v)
                     for (cid, text), v in zip(passages.items(), vectors)], [f"file:///kb/{c}.md" for c in passages], [])

        def top(question):
            return store.search(question, embedder.encode([question])[0], 3, "hybrid")

        assert top("Q7ZK9")[0].chunk_id == "code"  # a rare exact term: BM25 finds it
        paraphrase = top("why was my update stopped from deleting lots of files?")
        assert paraphrase[0].chunk_id == "guard"  # no shared keyword: the dense query finds it
        assert paraphrase[0].similarity == max(h.similarity for h in paraphrase if h.similarity is not None)
    finally:
        store.close()


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open descriptors through /proc")
def test_closing_a_store_releases_its_connections(catalog):
    warm = catalog.open("chunks")  # the first use may set up process-wide pools; count after it
    warm.apply([_chunk("a1", A, "alpha", 1)], [A], [])
    warm.search("alpha", _vec(1), 1, "hybrid")
    warm.close()
    before = _open_fds()
    store = catalog.open("chunks")
    assert store.search("alpha", _vec(1), 1, "hybrid")[0].chunk_id == "a1" and store.count() == 1
    store.close()
    assert _open_fds() <= before  # every socket and file the store used is closed again
    with pytest.raises(StoreUnavailable):
        store.search("alpha", _vec(1), 1, "hybrid")  # a closed store refuses use
    again = catalog.open("chunks")  # and a new one opens on demand
    assert again.count() == 1
    again.close()


def test_prune_never_deletes_what_it_keeps_nor_the_newest(catalog, store):
    """The retention policy's backend half: every backend keeps `keep` and the newest; what it reports is gone."""
    v1 = store.apply([_chunk("a1", A, "alpha", 1)], [A], [])
    v2 = store.apply([_chunk("b1", B, "beta", 2)], [B], [])
    v3 = store.apply([_chunk("a2", A, "alpha again", 3)], [A], [])
    assert {v1, v2, v3} <= set(catalog.versions("chunks")) and catalog.versions("nothing_here") == []
    gone = catalog.prune("chunks", {v1})
    held = catalog.versions("chunks")
    assert v1 in held and max(held) >= v3 and not set(gone) & set(held) and v1 not in gone and v3 not in gone
    reader = catalog.open("chunks", v1)
    try:
        assert reader.chunk_ids() == {"a1"}  # the kept version reads whole
    finally:
        reader.close()
    assert store.chunk_ids() == {"a2", "b1"}


# -- above the approximate-index threshold ------------------------------------------------------------------------
WORDS = [f"w{i}" for i in range(500)]


def _clustered(n: int, dim: int, seed: int) -> np.ndarray:
    """Unit vectors as sentence embeddings lie: by topic (40), then by document (10 chunks each), then by chunk.

    (Points spread evenly around a centre have no clear nearest neighbours, and no index finds them; real chunks do.)
    """
    rng = np.random.default_rng(seed)

    def unit(v):
        return v / np.linalg.norm(v, axis=-1, keepdims=True)

    topics = unit(rng.normal(size=(40, dim)))
    documents = unit(topics[rng.integers(0, 40, n // 10 + 1)] + 0.6 * unit(rng.normal(size=(n // 10 + 1, dim))))
    return unit(np.repeat(documents, 10, axis=0)[:n] + 0.35 * unit(rng.normal(size=(n, dim)))).astype(np.float32)


def _corpus(n: int, dim: int, seed: int, prefix: str = "r") -> list[IndexedChunk]:
    rng = np.random.default_rng(seed + 1)
    vectors = _clustered(n, dim, seed)
    return [IndexedChunk(f"{prefix}{i}", f"file:///big/{prefix}{i // 10}.md", f"h-{prefix}{i}", i % 10, "Heading",
                         "Title", " ".join(rng.choice(WORDS, 12)), vectors[i]) for i in range(n)]


def _exact_top(chunks: list[IndexedChunk], query: np.ndarray, k: int) -> list[str]:
    matrix = np.stack([c.vector for c in chunks])
    return [chunks[i].chunk_id for i in np.argsort(-(matrix @ query), kind="stable")[:k]]


def test_above_the_ann_threshold_dense_search_keeps_recall_and_finds_new_rows(store):
    chunks = _corpus(3_000, 64, seed=7)  # above ANN.min_rows: the backend searches an approximate index
    store.apply(chunks, sorted({c.doc_uri for c in chunks}), [])
    rng = np.random.default_rng(99)  # questions near the content, none of it exactly
    near = np.stack([chunks[i].vector for i in rng.choice(len(chunks), 30, replace=False)])
    queries = near + 0.3 * rng.normal(size=near.shape) / np.sqrt(64)
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    found = []
    for q in queries:
        hits = [h.chunk_id for h in store.search("", q, 10, "dense")]
        found.append(len(set(hits) & set(_exact_top(chunks, q, 10))) / 10)
    assert np.mean(found) >= 0.95  # recall@10 against an exact search of the same vectors

    fresh = _corpus(20, 64, seed=8, prefix="new")  # written after the index was built
    store.apply(fresh, sorted({c.doc_uri for c in fresh}), [])
    for chunk in fresh:
        assert store.search("", chunk.vector, 1, "dense")[0].chunk_id == chunk.chunk_id
    assert store.count() == 3_020
    hybrid = store.search(fresh[3].text, fresh[3].vector, 5, "hybrid")
    assert hybrid[0].chunk_id == fresh[3].chunk_id  # first in both lists


def test_the_recall_knob_is_accepted_and_bounded(store):
    chunks = _corpus(2_500, 32, seed=3)
    store.apply(chunks, sorted({c.doc_uri for c in chunks}), [])
    q = chunks[17].vector
    wide = store.search("", q, 10, "dense", ann=AnnKnob(nprobes=64, refine_factor=20, ef=256))
    assert wide[0].chunk_id == chunks[17].chunk_id
    assert [h.chunk_id for h in wide] == _exact_top(chunks, q, 10)  # searched widely enough to be exact
    narrow = store.search("", q, 10, "dense", ann=AnnKnob(nprobes=1, refine_factor=1, ef=16))
    assert len(narrow) == 10
    with pytest.raises(StoreUnavailable):
        AnnKnob(nprobes=0)
    with pytest.raises(StoreUnavailable):
        AnnKnob(ef=1_000_000)
