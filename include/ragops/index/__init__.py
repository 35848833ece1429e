"""The `IndexStore` and `IndexCatalog` protocols: all that callers use of a vector-index backend (LanceDB, Weaviate).

A *collection* is a lineage of index versions: the live one that refreshes keep writing to, or a blue/green candidate
built beside it. A store reads and writes one collection, optionally pinned to one of its versions. The catalogue is
the backend as a whole: which collections exist, and where its live pointer points.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Collection, Iterator, Literal, Protocol, Sequence, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from ragops.index.ann import AnnKnob

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
    similarity: float | None = None  # cosine similarity to the query, for hits the dense retriever found
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"chunk_id": self.chunk_id, "doc_uri": self.doc_uri, "score": round(self.score, 6), "text": self.text}


@runtime_checkable
class IndexStore(Protocol):
    """One collection of chunks with vectors; every write is one atomic commit that yields a new version."""

    collection: str

    def apply(self, upserts: Sequence[IndexedChunk], replace_docs: Sequence[str], delete_docs: Sequence[str]) -> int:
        """Upsert chunks by id, drop the other chunks of `replace_docs` and all of `delete_docs`; return the version.

        Readers pinned to an earlier version never see any of it. A pinned store refuses writes.
        """

    def rebuild(self, chunks: Sequence[IndexedChunk]) -> int:
        """Replace the whole collection with `chunks` (creating it if need be); return the version."""

    def search(self, query: str, vector: np.ndarray | None, k: int, mode: SearchMode = "hybrid", *,
               ann: AnnKnob | None = None) -> list[SearchHit]:
        """Dense (score = cosine similarity), BM25 (score = BM25) or hybrid (score = reciprocal rank fusion).

        `ann` trades recall for speed in the dense query of a collection with an approximate index (nprobes and
        refine_factor on LanceDB, ef on Weaviate); unset, the configured defaults (RAGOPS_ANN_*) apply.
        """

    def document(self, doc_uri: str) -> list[SearchHit]:
        """The chunks of one document (matched exactly) in reading order."""

    def count(self) -> int: ...

    def chunk_ids(self) -> set[str]: ...

    def rows(self, columns: Sequence[str]) -> list[dict]:
        """Every chunk of the (pinned) version, with only `columns` (never the vectors unless asked)."""

    def scan(self, columns: Sequence[str], batch_rows: int = 1024) -> Iterator[list[dict]]:
        """The rows of `rows`, streamed in batches of at most `batch_rows`: memory bounded by one batch."""

    def exists(self) -> bool: ...

    def drop(self) -> None:
        """Delete the whole collection, every version of it."""

    def close(self) -> None:
        """Release what the store holds; a closed store refuses further use."""

    def version(self) -> int:
        """The pinned version, else the newest."""

    def checkout(self, version: int) -> None:
        """Pin reads to a committed version (serving a release, or a rollback); StoreUnavailable if it is gone."""


@runtime_checkable
class IndexCatalog(Protocol):
    """The backend as a whole: its collections and its live pointer. One per process and configuration."""

    live_pointer: Literal["registry", "alias"]  # where the backend keeps the pointer that promotion moves

    def open(self, collection: str, version: int | None = None) -> IndexStore:
        """A store on `collection`, pinned to `version` when given."""

    def collections(self) -> list[str]: ...

    def versions(self, collection: str) -> list[int]:
        """The versions of `collection` the backend still holds, oldest first; [] when it does not exist."""

    def prune(self, collection: str, keep: Collection[int]) -> list[int]:
        """Delete the versions of `collection` the retention policy does not keep; return those deleted.

        Never the newest nor one in `keep`. The policy (ragops.ingest.retention) is the same on every backend.
        """

    def promote(self, collection: str, version: int) -> None:
        """Move the live pointer to `version` of `collection` without copying data; StoreUnavailable if it is gone.

        Where the pointer is the registry's live row (LanceDB) this only checks the target; the caller moves the row.
        """

    def live(self) -> tuple[str, int] | None:
        """What the backend's own live pointer names: (collection, version); None where the registry row is it."""

    def close(self) -> None:
        """Release the backend's connections (they are re-opened on demand)."""


def open_catalog(settings) -> IndexCatalog:
    """The process's catalogue for the backend that `RAGOPS_STORE` names."""
    from ragops.index.backends import catalog_for

    return catalog_for(settings)


def open_store(settings, collection: str = "chunks", *, read_only_version: int | None = None) -> IndexStore:
    """A store on `collection` of the configured backend, pinned to `read_only_version` when given."""
    return open_catalog(settings).open(collection, read_only_version)


def close_backends() -> None:
    """Close every backend connection this process holds (serving shutdown, CLI exit, Airflow task end)."""
    from ragops.index.backends import close_all

    close_all()
