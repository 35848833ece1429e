"""The Weaviate store's write path and result shape, at the client boundary (the conformance suite runs the rest
against a real server when RAGOPS_WEAVIATE_URL is set)."""

import numpy as np
import pytest
from weaviate.collections.classes.internal import MetadataReturn, Object
from weaviate.util import generate_uuid5

from ragops.errors import StoreUnavailable
from ragops.index import IndexedChunk
from ragops.index.fusion import reciprocal_rank_fusion
from ragops.index.weaviate import WeaviateCatalog
from ragops.index.weaviate.store import to_row

A, B = "file:///docs/a/guide.md", "file:///docs/b/guide.md"


def _chunk(cid, doc, ordinal=0):
    return IndexedChunk(cid, doc, f"h-{cid}", ordinal, "", "Title", f"text of {cid}", np.ones(4, dtype=np.float32))


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch):
    monkeypatch.setattr("ragops.index.weaviate.batch.PAUSE_S", 0.0)


def _catalog(client_double, **kwargs):
    client = client_double(**kwargs)
    return WeaviateCatalog(lambda: client), client


def test_each_write_is_a_new_version_and_the_old_one_stays_whole(client_double):
    catalog, client = _catalog(client_double)
    store = catalog.open("chunks")
    v1 = store.rebuild([_chunk("a0", A), _chunk("a1", A, 1), _chunk("b0", B)])
    v2 = store.apply([_chunk("b1", B, 1)], replace_docs=[], delete_docs=[A])
    assert (v1, v2) == (1, 2) and catalog.versions("chunks") == [1, 2]
    ids = {name: {p["chunk_id"] for p, _ in c.stored.values()} for name, c in client.stored.items()}
    assert ids == {"Ragops_chunks_v1": {"a0", "a1", "b0"}, "Ragops_chunks_v2": {"b0", "b1"}}
    assert client.stored["Ragops_chunks_v2"].indexed  # the vector index held it before the version was returned
    kept = client.stored["Ragops_chunks_v2"].stored[generate_uuid5("b0")]
    assert kept == client.stored["Ragops_chunks_v1"].stored[generate_uuid5("b0")]  # copied with its vector
    assert list(kept[1]) == ["default"] and len(kept[1]["default"]) == 4  # the collection's one named vector
    with pytest.raises(StoreUnavailable, match="read-only"):
        catalog.open("chunks", 1).apply([_chunk("x", A)], [A], [])


def test_a_failed_write_leaves_no_half_written_version(client_double):
    catalog, client = _catalog(client_double, reject={generate_uuid5("a1"): 99})
    store = catalog.open("chunks")
    with pytest.raises(StoreUnavailable, match="could not be written"):
        store.rebuild([_chunk("a0", A), _chunk("a1", A, 1)])
    assert client.deleted == ["Ragops_chunks_v1"] and catalog.versions("chunks") == []


def test_a_transient_rejection_is_retried_into_a_whole_version(client_double):
    catalog, client = _catalog(client_double, reject={generate_uuid5("a1"): 2})
    assert catalog.open("chunks").rebuild([_chunk("a0", A), _chunk("a1", A, 1)]) == 1
    assert len(client.stored["Ragops_chunks_v1"].stored) == 2 and client.deleted == []


def test_a_write_prunes_nothing_the_retention_policy_does(client_double):
    catalog, client = _catalog(client_double)
    store = catalog.open("chunks")
    for n in range(5):
        store.rebuild([_chunk(f"c{n}", A)])
    assert catalog.versions("chunks") == [1, 2, 3, 4, 5] and client.deleted == []  # ragops.ingest.retention prunes


def _result(cid, **metadata):
    properties = {"chunk_id": cid, "doc_uri": A, "chunk_hash": "h", "ordinal": 0, "heading": None, "title": "T",
                  "text": f"text {cid}"}
    return Object(uuid=generate_uuid5(cid), metadata=MetadataReturn(**metadata), properties=properties,
                  references=None, vector={}, collection="Ragops_chunks_v1")


def test_weaviate_results_fuse_exactly_like_lancedb_rows():
    dense = [_result("x", distance=0.1), _result("y", distance=0.4)]
    sparse = [_result("y", score=7.5), _result("z", score=2.0)]
    hits = reciprocal_rank_fusion([to_row(o, _distance=o.metadata.distance) for o in dense],
                                  [to_row(o, _score=o.metadata.score) for o in sparse], 3)

    def lance_row(cid, **extra):  # what LanceDB returns for the same passages
        return {"chunk_id": cid, "doc_uri": A, "chunk_hash": "h", "ordinal": 0, "heading": "", "title": "T",
                "text": f"text {cid}"} | extra

    expected = reciprocal_rank_fusion([lance_row("x", _distance=0.1), lance_row("y", _distance=0.4)],
                                      [lance_row("y", _score=7.5), lance_row("z", _score=2.0)], 3)
    assert hits == expected
    assert [h.chunk_id for h in hits] == ["y", "x", "z"] and hits[0].score == pytest.approx(1 / 62 + 1 / 61)
    assert hits[1].similarity == pytest.approx(0.9) and hits[2].similarity is None  # BM25-only: no similarity
    assert hits[0].heading == ""  # Weaviate's null for an empty text reads as LanceDB's ''


def test_a_query_ef_is_set_on_the_version_read_once_not_per_query(client_double):
    from types import SimpleNamespace

    from ragops.index.ann import AnnKnob, AnnPolicy

    client = client_double()
    catalog = WeaviateCatalog(lambda: client, ann=AnnPolicy(ef=48))
    store = catalog.open("chunks")
    updates = []
    collection = SimpleNamespace(name="Ragops_chunks_v1", config=SimpleNamespace(update=lambda **kw: updates.append(kw)))
    store._tune(collection, 200)
    store._tune(collection, 200)
    assert len(updates) == 1 and updates[0]["vector_config"].vectorIndexConfig.ef == 200
    store._tune(collection, AnnKnob(ef=64).ef)
    assert len(updates) == 2
    store.close()


def test_a_store_does_not_trust_an_ef_another_store_of_the_process_has_since_changed(client_double):
    from types import SimpleNamespace

    client = client_double()
    catalog = WeaviateCatalog(lambda: client)
    first, second = catalog.open("chunks"), catalog.open("chunks")
    updates = []
    collection = SimpleNamespace(name="Ragops_chunks_v1", config=SimpleNamespace(update=lambda **kw: updates.append(kw)))
    first._tune(collection, 200)
    second._tune(collection, 64)  # the version's ef is now 64, for every reader
    first._tune(collection, 200)  # so the first store must set 200 again, not believe it is still set
    assert [u["vector_config"].vectorIndexConfig.ef for u in updates] == [200, 64, 200]
    first.close(), second.close()


@pytest.mark.parametrize("bad", [np.full(4, np.nan, np.float32), np.zeros(4, np.float32)])
def test_an_unusable_vector_is_refused_before_a_version_is_created(client_double, bad):
    from dataclasses import replace

    catalog, client = _catalog(client_double)
    store = catalog.open("chunks")
    store.rebuild([_chunk("a0", A)])
    for write in (lambda: store.rebuild([_chunk("b0", B), replace(_chunk("b1", B), vector=bad)]),
                  lambda: store.apply([replace(_chunk("b1", B), vector=bad)], [], [])):
        with pytest.raises(StoreUnavailable, match="'b1'"):
            write()
    assert list(client.stored) == ["Ragops_chunks_v1"] and catalog.versions("chunks") == [1]
    with pytest.raises(StoreUnavailable, match="query vector"):
        store.search("text", bad, 3, "dense")
    store.close()
