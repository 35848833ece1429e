"""How ragops lays out an index in Weaviate: names, the collection schema, and what a write keeps.

Every index version is its own Weaviate collection, `<Prefix>_<collection>_v<N>`; the alias `<Prefix>_live` names the
live one. Ids, URIs and hashes use `Tokenization.FIELD`: the whole value is one token, so a filter on
`file:///docs/a/guide.md` can never match `file:///docs/b/guide.md` (the default `word` tokenization splits a URI
into "file", "docs", "a", "guide", "md" and would).
"""

from __future__ import annotations

import re
from typing import Iterable, Iterator

from ragops.errors import StoreUnavailable

PROPS = ["chunk_id", "doc_uri", "chunk_hash", "ordinal", "heading", "title", "text"]
EXACT = ("chunk_id", "doc_uri", "chunk_hash")  # matched whole, never searched by keyword
SEARCHED = ["text"]  # BM25 reads only the passage text, as LanceDB's full-text index does
VECTOR = "default"  # the one named vector, named explicitly in writes and queries
_COLLECTION = re.compile(r"[a-z0-9][a-z0-9_]{0,99}")  # used with fullmatch
_PREFIX = re.compile(r"[A-Z][A-Za-z0-9]{0,39}")
MIN_SERVER = (1, 32, 0)  # collection aliases


def check_prefix(prefix: str) -> str:
    if not _PREFIX.fullmatch(prefix or ""):
        raise StoreUnavailable(f"invalid Weaviate prefix {prefix!r}: a capital letter, then letters and digits")
    return prefix


def check_collection(collection: str) -> str:
    if not _COLLECTION.fullmatch(collection or ""):
        raise StoreUnavailable(f"invalid index collection name {collection!r}: lower-case letters, digits and _")
    return collection


def physical(prefix: str, collection: str, version: int) -> str:
    """The Weaviate collection that holds `version` of `collection`."""
    if version < 1:
        raise StoreUnavailable(f"index versions start at 1, not {version}")
    return f"{prefix}_{check_collection(collection)}_v{version}"


def parse(prefix: str, name: str) -> tuple[str, int] | None:
    """(collection, version) of a Weaviate collection this layout made, else None."""
    if not name.startswith(prefix + "_"):
        return None
    collection, sep, version = name[len(prefix) + 1:].rpartition("_v")
    if not sep or not (version.isascii() and version.isdigit()) or not _COLLECTION.fullmatch(collection):
        return None
    return collection, int(version)


def live_alias(prefix: str) -> str:
    return f"{prefix}_live"


def collection_config(name: str, ef: int = -1) -> dict:
    """Keyword arguments for `client.collections.create`: vectors we provide, cosine HNSW, BM25 as LanceDB's.

    Weaviate keeps every collection in an HNSW graph, however small; `ef` is its query list size (-1: dynamic,
    8 x the limit within 100..500, the server's defaults). `hnsw_ef` changes it later on a collection.
    """
    from weaviate.classes.config import Configure, DataType, Property, Tokenization, VectorDistances

    def text(prop: str) -> Property:
        if prop in EXACT:
            return Property(name=prop, data_type=DataType.TEXT, tokenization=Tokenization.FIELD,
                            index_filterable=True, index_searchable=False)
        return Property(name=prop, data_type=DataType.TEXT, tokenization=Tokenization.WORD,
                        index_searchable=prop in SEARCHED)

    return {
        "name": name,
        "description": "ragops index version (written once, then only read)",
        "properties": [text(p) for p in PROPS if p != "ordinal"] + [Property(name="ordinal", data_type=DataType.INT)],
        "vector_config": Configure.Vectors.self_provided(
            name=VECTOR, vector_index_config=Configure.VectorIndex.hnsw(distance_metric=VectorDistances.COSINE, ef=ef)),
        "inverted_index_config": Configure.inverted_index(bm25_b=0.75, bm25_k1=1.2),
    }


def hnsw_ef(ef: int):
    """The `vector_config` argument of `collection.config.update` that sets the HNSW query list size of our vector."""
    from weaviate.classes.config import Reconfigure

    return Reconfigure.Vectors.update(name=VECTOR, vector_index_config=Reconfigure.VectorIndex.hnsw(ef=ef))


def survivors(objects: Iterable, touched_docs: Iterable[str], upsert_ids: Iterable[str]) -> Iterator:
    """The objects of the previous version that a write keeps: exact matches only, never by token."""
    touched, replaced = set(touched_docs), set(upsert_ids)
    for obj in objects:
        if obj.properties["doc_uri"] not in touched and obj.properties["chunk_id"] not in replaced:
            yield obj


def server_version(meta_version: str) -> tuple[int, int, int]:
    parts = re.findall(r"\d+", meta_version or "")[:3]
    if len(parts) < 2:
        raise StoreUnavailable(f"cannot read the Weaviate server version {meta_version!r}")
    return tuple(int(p) for p in (parts + ["0"])[:3])  # type: ignore[return-value]


def require_aliases(meta_version: str) -> None:
    if server_version(meta_version) < MIN_SERVER:
        raise StoreUnavailable(f"Weaviate {meta_version} is too old: ragops needs >= 1.32 for collection aliases "
                               "(the live pointer)")
