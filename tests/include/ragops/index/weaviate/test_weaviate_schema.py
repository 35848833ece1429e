"""The Weaviate layout, checked without a server: the schema as the v4 client serialises it, names, survivors."""

from types import SimpleNamespace

import pytest
from weaviate.collections.classes.config import _CollectionConfigCreate

from ragops.errors import StoreUnavailable
from ragops.index.weaviate.schema import (collection_config, live_alias, parse, physical, require_aliases,
                                          survivors)


def _payload(name="Ragops_chunks_v1") -> dict:
    """What the client would POST to /v1/schema for our collection (the client's own serialisation)."""
    return _CollectionConfigCreate(**collection_config(name))._to_dict(emit_default_vector_index_type=True)


def test_ids_uris_and_hashes_are_one_token_and_never_keyword_searched():
    props = {p["name"]: p for p in _payload()["properties"]}
    for exact in ("chunk_id", "doc_uri", "chunk_hash"):
        assert props[exact]["tokenization"] == "field", exact
        assert props[exact]["indexFilterable"] is True and props[exact]["indexSearchable"] is False, exact
    assert props["text"]["tokenization"] == "word" and props["text"]["indexSearchable"] is True
    assert props["heading"]["indexSearchable"] is False and props["title"]["indexSearchable"] is False
    assert props["ordinal"]["dataType"] == ["int"]


def test_vectors_are_ours_and_compared_by_cosine_like_lancedb():
    payload = _payload()
    vector = payload["vectorConfig"]["default"]
    assert vector["vectorizer"] == {"none": {}} and vector["vectorIndexType"] == "hnsw"
    assert vector["vectorIndexConfig"]["distance"] == "cosine"
    assert payload["invertedIndexConfig"]["bm25"] == {"b": 0.75, "k1": 1.2}
    assert payload["class"] == "Ragops_chunks_v1"


def test_one_collection_per_version_and_names_round_trip():
    assert physical("Ragops", "chunks", 7) == "Ragops_chunks_v7"
    assert parse("Ragops", "Ragops_chunks_20260101120000_350_v12") == ("chunks_20260101120000_350", 12)
    assert parse("Ragops", "Ragops_v2_v3") == ("v2", 3)
    assert parse("Ragops", live_alias("Ragops")) is None  # the alias is never mistaken for a version
    assert parse("Ragops", "Other_chunks_v1") is None and parse("Ragops", "Ragops_chunks") is None
    assert parse("Ragops", "Ragops_chunks_vX") is None


@pytest.mark.parametrize("hostile", ["", "Chunks", "../chunks", "chunks; drop", "chunks-1", "x" * 101, "chunks\n"])
def test_hostile_collection_names_are_refused(hostile):
    with pytest.raises(StoreUnavailable):
        physical("Ragops", hostile, 1)


def test_versions_start_at_one():
    with pytest.raises(StoreUnavailable):
        physical("Ragops", "chunks", 0)


def _obj(chunk_id, doc_uri):
    return SimpleNamespace(properties={"chunk_id": chunk_id, "doc_uri": doc_uri})


def test_a_write_keeps_exactly_what_it_does_not_touch():
    a, b = "file:///docs/a/guide.md", "file:///docs/b/guide.md"  # every token shared but one
    previous = [_obj("a0", a), _obj("a1", a), _obj("b0", b), _obj("b1", b), _obj("c0", "file:///docs/a")]
    kept = [o.properties["chunk_id"] for o in survivors(previous, touched_docs=[a], upsert_ids=["b1"])]
    assert kept == ["b0", "c0"]  # a's chunks go, b1 is replaced by its upsert, a URI prefix is another document


def test_servers_without_collection_aliases_are_refused():
    require_aliases("1.32.0")
    require_aliases("1.33.2-rc.1")
    for old in ("1.30.0", "1.31.9"):
        with pytest.raises(StoreUnavailable, match="1.32"):
            require_aliases(old)
    with pytest.raises(StoreUnavailable):
        require_aliases("")


def test_the_hnsw_query_list_size_is_set_at_creation_and_can_be_changed_on_our_vector():
    from ragops.index.weaviate.schema import hnsw_ef

    assert _CollectionConfigCreate(**collection_config("Ragops_chunks_v1", ef=64))._to_dict(
        emit_default_vector_index_type=True)["vectorConfig"]["default"]["vectorIndexConfig"]["ef"] == 64
    assert _payload()["vectorConfig"]["default"]["vectorIndexConfig"]["ef"] == -1  # the default: dynamic ef
    update = hnsw_ef(128)
    assert update.name == "default" and update.vectorIndexConfig.ef == 128
