"""Search the live index version: the query is embedded once and handed to the store (dense, BM25, hybrid)."""

from __future__ import annotations

from typing import Sequence

from ragops.config import Settings
from ragops.errors import StoreUnavailable
from ragops.index import IndexStore, SearchHit, SearchMode, open_store
from ragops.ingest.embedding import Embedder
from ragops.registry import Registry
from ragops.registry.db import live_index_version


class Retriever:
    """Reads one pinned index version, so a refresh that is writing never shows half its work."""

    def __init__(self, settings: Settings, registry: Registry | None = None, embedder: Embedder | None = None,
                 store: IndexStore | None = None, index_version: int | None = None):
        self.settings = settings
        self.registry = registry or Registry(settings.registry_url)
        self.embedder = embedder or Embedder(settings.embedding_model, settings.embed_batch_size)
        self.index_version, self.store = self._open(store, index_version)

    def _open(self, store: IndexStore | None, index_version: int | None) -> tuple[int, IndexStore]:
        from ragops.registry.models import IndexVersion

        with self.registry.session() as s:
            version = s.get(IndexVersion, index_version) if index_version else live_index_version(s)
        if version is None:
            raise StoreUnavailable("there is no index yet: run `ragops refresh` (or the document_refresh DAG) first")
        if version.embedding_model != self.embedder.model_name:  # queries must be embedded like the index was
            self.embedder = Embedder(version.embedding_model, self.settings.embed_batch_size)
        store = store or open_store(self.settings, version.collection)
        store.checkout(version.store_version)
        return version.id, store

    def search(self, query: str, k: int = 5, mode: SearchMode = "hybrid") -> list[SearchHit]:
        vector = None if mode == "bm25" else self.embedder.encode([query])[0]
        return self.store.search(query, vector, k, mode)

    def search_many(self, queries: Sequence[str], k: int = 5, mode: SearchMode = "hybrid") -> list[list[SearchHit]]:
        """Embed all queries in one batch, then search each."""
        vectors = self.embedder.encode(list(queries)) if mode != "bm25" else [None] * len(queries)
        return [self.store.search(q, v, k, mode) for q, v in zip(queries, vectors)]
