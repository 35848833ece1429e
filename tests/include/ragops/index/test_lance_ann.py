"""The IVF index a large LanceDB collection keeps: built at the threshold, kept current, rebuilt, never in the way."""

import logging

import numpy as np

from ragops.index import IndexedChunk, lance_ann
from ragops.index.ann import AnnPolicy
from ragops.index.lance import LanceStore
from ragops.index.lance_ann import VECTOR_INDEX, has_vector_index

DIM = 32

def _chunks(n: int, seed: int, prefix: str = "c") -> list[IndexedChunk]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, DIM))
    v = centres[rng.integers(0, 20, n)] + rng.normal(size=(n, DIM)) * 0.5
    v = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    return [IndexedChunk(f"{prefix}{i}", f"file:///d/{prefix}{i // 10}.md", f"h{prefix}{i}", i % 10, "H", "T",
                         f"text {prefix}{i}", v[i]) for i in range(n)]

def _store(tmp_path, **policy) -> LanceStore:
    return LanceStore(tmp_path, "chunks", ann=AnnPolicy(**{"min_rows": 2_000} | policy))

def test_below_the_threshold_there_is_no_index_and_search_stays_exact(tmp_path):
    store = _store(tmp_path)
    chunks = _chunks(1_999, 1)
    store.rebuild(chunks)
    assert not has_vector_index(store._tbl) and store.ann_report.action == "none"
    query = store._tbl.search(chunks[0].vector).distance_type("cosine").limit(5)
    assert "ANN" not in query.explain_plan() and "KNNVectorDistance" in query.explain_plan()

def test_the_index_is_built_at_the_threshold_and_new_rows_are_found_before_it_absorbs_them(tmp_path):
    store = _store(tmp_path)
    store.rebuild(_chunks(2_000, 1))
    assert store.ann_report.action == "built" and has_vector_index(store._tbl)
    assert store.ann_report.params == {"num_partitions": 11}

    fresh = _chunks(30, 2, prefix="n")
    store._tbl.add(store._rows(fresh))  # a commit the index has not absorbed yet (no optimize)
    assert store._tbl.index_stats(VECTOR_INDEX).num_unindexed_rows == 30
    reader = LanceStore(tmp_path, "chunks", ann=store.ann)
    for chunk in fresh:  # searched exactly beside the index
        assert reader.search("", chunk.vector, 1, "dense")[0].chunk_id == chunk.chunk_id

    store.apply(_chunks(5, 3, prefix="m"), [], [])  # a refresh: optimize folds every new row into the index
    stats = store._tbl.index_stats(VECTOR_INDEX)
    assert stats.num_unindexed_rows == 0 and stats.num_indexed_rows == 2_035
    assert store.ann_report.action == "absorbed" and store.ann_report.recall >= 0.9

def test_the_index_is_rebuilt_when_it_holds_too_small_a_share(tmp_path, monkeypatch):
    store = _store(tmp_path, min_indexed_share=0.99)
    store.rebuild(_chunks(2_000, 1))
    store._tbl.add(store._rows(_chunks(100, 4, prefix="n")))  # 95% indexed
    monkeypatch.setattr(store._tbl, "optimize", lambda **kw: None)  # as if the writer crashed before optimizing
    store.apply([], [], ["file:///d/c0.md"])
    assert store.ann_report.action == "rebuilt" and "0.952" in store.ann_report.reason
    assert store._tbl.index_stats(VECTOR_INDEX).num_unindexed_rows == 0

def test_the_index_is_rebuilt_when_the_measured_recall_drops_below_the_floor(tmp_path):
    store = _store(tmp_path, nprobes=1, refine_factor=1, recall_floor=1.0, recall_sample=8)
    store.rebuild(_chunks(3_000, 1))
    store.apply(_chunks(10, 5, prefix="n"), [], [])
    report = store.ann_report
    assert report.action == "rebuilt" and "recall@10" in report.reason  # one probe, no refine: recall under 1.0

def test_a_collection_that_shrinks_well_below_the_threshold_returns_to_exact_search(tmp_path):
    store = _store(tmp_path)
    chunks = _chunks(2_100, 1)
    store.rebuild(chunks)
    store.apply([], [], sorted({c.doc_uri for c in chunks[:1_200]}))  # 900 left, under half of 2,000
    assert store.ann_report.action == "dropped" and not has_vector_index(store._tbl)
    assert store.search("", chunks[1_500].vector, 1, "dense")[0].chunk_id == chunks[1_500].chunk_id

def test_a_failed_index_build_loses_no_rows_and_says_so(tmp_path, monkeypatch, caplog):
    store = _store(tmp_path)
    monkeypatch.setattr(lance_ann, "build", lambda table, rows: (_ for _ in ()).throw(RuntimeError("disk full")))
    chunks = _chunks(2_000, 1)
    with caplog.at_level(logging.ERROR):
        version = store.apply(chunks, [], [])
    assert store.count() == 2_000 and version == store.version()
    assert store.ann_report.action == "failed" and "disk full" in store.ann_report.reason
    assert "could not be maintained" in caplog.text
    assert store.search("", chunks[9].vector, 1, "dense")[0].chunk_id == chunks[9].chunk_id  # exact, as before

def test_a_pinned_reader_uses_the_index_of_its_version(tmp_path):
    store = _store(tmp_path)
    small = store.rebuild(_chunks(500, 1))
    store.apply(_chunks(2_000, 2, prefix="b"), [], [])
    reader = LanceStore(tmp_path, "chunks", ann=store.ann)
    reader.checkout(small)
    assert not reader._has_vector_index() and reader.count() == 500
    latest = LanceStore(tmp_path, "chunks", ann=store.ann)
    assert latest._has_vector_index()


def test_the_index_is_retrained_once_the_collection_has_outgrown_its_partitions(tmp_path):
    store = _store(tmp_path, min_rows=500)
    store.rebuild(_chunks(600, 1))
    assert store.ann_report.params == {"num_partitions": 6}
    store.apply(_chunks(1_000, 2, prefix="n"), [], [])  # 1,600 rows: 10 partitions would do, 6 still serve
    assert store.ann_report.action == "absorbed"
    store.apply(_chunks(1_000, 3, prefix="m"), [], [])  # 2,600 rows want 13 partitions: twice those it was built with
    assert store.ann_report.action == "rebuilt" and store.ann_report.params == {"num_partitions": 13}
    assert "6 partitions" in store.ann_report.reason
    store.apply(_chunks(5, 4, prefix="k"), [], [])
    assert store.ann_report.action == "absorbed"  # retrained once, not on every write after
    reader = LanceStore(tmp_path, "chunks", ann=store.ann)
    assert reader.search("", _chunks(1_000, 3, prefix="m")[7].vector, 1, "dense")[0].chunk_id == "m7"


def test_a_reader_pinned_after_a_retrain_reads_through_the_new_index_and_compaction_keeps_its_count(tmp_path):
    from ragops.index.lance import NO_CLEANUP
    from ragops.index.lance_ann import built_partitions

    store = _store(tmp_path, min_rows=500)
    store.rebuild(_chunks(600, 1))
    grown = _chunks(2_000, 2, prefix="n")
    store.apply(grown, [], [])
    assert store.ann_report.action == "rebuilt"
    kept = store.version()
    store._tbl.optimize(cleanup_older_than=NO_CLEANUP)  # the compaction a prune starts with
    reader = LanceStore(tmp_path, "chunks", ann=store.ann)
    reader.checkout(kept)
    assert reader._has_vector_index() and built_partitions(reader._tbl) == 13
    assert all(reader.search("", c.vector, 1, "dense")[0].chunk_id == c.chunk_id for c in grown[:50])
    assert built_partitions(store._tbl) == 13
    store.apply(_chunks(5, 3, prefix="m"), [], [])
    assert store.ann_report.action == "absorbed"  # the recorded count survived: no needless retrain
