"""bench/scale.py's parts that decide its figures: the synthetic corpus and the exact top-k it is measured against."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def scale():
    spec = importlib.util.spec_from_file_location("bench_scale", REPO / "bench" / "scale.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_scale"] = module
    spec.loader.exec_module(module)
    return module


def _seeds(n=12, dim=24):
    v = np.random.default_rng(0).normal(size=(n, dim))
    return [f"seed paragraph number {i} about topic{i}" for i in range(n)], (v / np.linalg.norm(v, axis=1,
                                                                                                keepdims=True))


def test_the_corpus_is_deterministic_batched_and_near_its_seeds(scale, monkeypatch):
    monkeypatch.setattr(scale, "BATCH", 100)
    texts, vectors = _seeds()
    corpus = scale.Corpus(texts, vectors, chunks=350)
    batches = list(corpus.batches())
    chunks = [c for b in batches for c in b]
    assert [len(b) for b in batches] == [100, 100, 100, 50] and len({c.chunk_id for c in chunks}) == 350
    again = [c for b in scale.Corpus(texts, vectors, chunks=350).batches() for c in b]
    assert all(a.text == b.text and np.array_equal(a.vector, b.vector) for a, b in zip(chunks, again))
    assert all(abs(np.linalg.norm(c.vector) - 1) < 1e-5 for c in chunks)
    best = np.max(np.stack([c.vector for c in chunks]) @ vectors.T, axis=1)
    assert np.median(best) > 0.6  # every chunk sits near a real seed vector
    same_doc = chunks[0].vector @ chunks[1].vector
    assert same_doc > np.median(np.stack([c.vector for c in chunks[10:]]) @ chunks[0].vector)
    changed = corpus.documents(3, 1, generation=1)
    assert [c.chunk_id for c in changed] == [f"d3-{i}" for i in range(10)]
    assert changed[0].chunk_hash != chunks[30].chunk_hash  # a refresh writes new content under the same ids


def test_the_exact_top_k_merged_batch_by_batch_equals_a_full_scan(scale, monkeypatch):
    monkeypatch.setattr(scale, "BATCH", 100)
    texts, vectors = _seeds()
    corpus = scale.Corpus(texts, vectors, chunks=400)
    queries = vectors[:5] + 0.1
    queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    exact = scale.ExactTop(queries, depth=30)
    chunks = [c for b in corpus.batches() for c in exact.add(b)]
    matrix = np.stack([c.vector for c in chunks])
    for q in range(5):
        full = [chunks[i].chunk_id for i in np.argsort(-(matrix @ queries[q]), kind="stable")[:30]]
        assert list(exact.ids[q][:10]) == full[:10]
        assert exact.rows(q)[0]["_distance"] == pytest.approx(
            1 - float(np.max(matrix @ queries[q])), abs=1e-5)


def test_the_planner_cost_is_reported_for_both_corpus_sizes_and_both_listings(scale, tmp_path):
    costs = scale.planner_cost(tmp_path)
    keys = {"10000_docs_10_changed_ms", "100000_docs_10_changed_ms", "100000_docs_1000_changed_ms"}
    assert set(costs["full_listing"]) == set(costs["feed"]) == keys
    assert all(v > 0 for v in [*costs["full_listing"].values(), *costs["feed"].values()])
    # the feed reads only what was logged after the cursor (the changes and the watcher's scan marker)
    assert costs["feed_entries_read"] == {"10000_docs_10_changed_ms": 11, "100000_docs_10_changed_ms": 11,
                                          "100000_docs_1000_changed_ms": 1001}
    assert costs["plans_agree"]


def test_the_real_files_measure_reads_only_what_changed_from_the_feed(scale, tmp_path):
    found = scale.real_files(300, 7, tmp_path)
    assert found["listed"] == 300 and found["read_from_feed"] == 7


def test_the_exact_top_k_takes_a_last_batch_smaller_than_its_depth(scale, monkeypatch):
    monkeypatch.setattr(scale, "BATCH", 100)
    texts, vectors = _seeds()
    corpus = scale.Corpus(texts, vectors, chunks=420)  # the last batch holds 20 chunks, fewer than the depth of 30
    exact = scale.ExactTop(vectors[:3], depth=30)
    chunks = [c for b in corpus.batches() for c in exact.add(b)]
    matrix = np.stack([c.vector for c in chunks])
    for q in range(3):
        full = [chunks[i].chunk_id for i in np.argsort(-(matrix @ vectors[q]), kind="stable")[:30]]
        assert list(exact.ids[q]) == full
    tiny = scale.ExactTop(vectors[:1], depth=30)
    tiny.add(chunks[:5])
    assert len(tiny.ids[0]) == 5
