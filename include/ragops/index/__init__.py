"""The `IndexStore` protocol: what every vector-index backend (LanceDB, Weaviate) must provide."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol, Sequence, runtime_checkable

import numpy as np

SearchMode = Literal["dense", "bm25", "hybrid"]


@dataclass
class IndexedChunk:
    chunk_id: str
    doc_uri: str
    chunk_hash: str
    ordinal: int
    heading: str
    title: str
    text: str
    vector: np.ndarray


@dataclass
class SearchHit:
    chunk_id: str
    doc_uri: str
    score: float
    text: str
    heading: str = ""
    title: str = ""
    similarity: float | None = None  # cosine similarity to the query when the backend knows it
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"chunk_id": self.chunk_id, "doc_uri": self.doc_uri, "score": round(self.score, 6), "text": self.text}


@runtime_checkable
class IndexStore(Protocol):
    """One collection of chunks with vectors; every write is one atomic commit that yields a version."""

    collection: str

    def apply(self, upserts: Sequence[IndexedChunk], replace_docs: Sequence[str], delete_docs: Sequence[str]) -> int:
        """Upsert chunks by id, drop the other chunks of `replace_docs` and all of `delete_docs`; return the version."""

    def rebuild(self, chunks: Sequence[IndexedChunk]) -> int:
        """Replace the whole collection with `chunks`; return the version."""

    def search(self, query: str, vector: np.ndarray | None, k: int, mode: SearchMode = "hybrid") -> list[SearchHit]: ...

    def document(self, doc_uri: str) -> list[SearchHit]:
        """The chunks of one document in reading order."""

    def count(self) -> int: ...

    def chunk_ids(self) -> set[str]: ...

    def rows(self, columns: Sequence[str]) -> list[dict]:
        """Every chunk of the (pinned) version, with only `columns` (never the vectors unless asked)."""

    def exists(self) -> bool: ...

    def drop(self) -> None:
        """Delete the whole collection."""

    def close(self) -> None:
        """Release the store's connections."""

    def version(self) -> int: ...

    def checkout(self, version: int) -> None:
        """Pin reads to an earlier committed version (serving a release, or a rollback)."""


def open_store(settings, collection: str = "chunks", *, read_only_version: int | None = None) -> IndexStore:
    """The backend that `RAGOPS_STORE` names."""
    if settings.store == "weaviate":
        from ragops.index.weaviate import WeaviateStore

        store: IndexStore = WeaviateStore(settings.weaviate_url, collection)
    else:
        from ragops.index.lance import LanceStore

        store = LanceStore(settings.lance_dir, collection)
    if read_only_version is not None:
        store.checkout(read_only_version)
    return store
