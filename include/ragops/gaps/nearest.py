"""Where an answer would belong: the live index's documents nearest to a cluster, by dense search."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ragops.config import Settings
from ragops.index import IndexStore, open_store
from ragops.ingest.embedding import Embedder
from ragops.registry import Registry
from ragops.registry.db import live_index_version

HITS = 20  # chunks searched per cluster, grouped by document
DOCUMENTS = 3


@dataclass
class LiveIndex:
    """The live index version, and the embedder its vectors were made with (questions are embedded the same way)."""

    version_id: int | None
    embedder: Embedder
    store: IndexStore | None

    @classmethod
    def open(cls, settings: Settings, registry: Registry, embedder: Embedder | None = None) -> "LiveIndex":
        with registry.session() as s:
            version = live_index_version(s)
        if version is None:  # no index yet: the gaps are still clustered, with nowhere to point them
            return cls(None, embedder or Embedder.from_settings(settings), None)
        if embedder is None or embedder.model_name != version.embedding_model:
            embedder = Embedder.from_settings(settings, version.embedding_model)
        store = open_store(settings, version.collection)
        store.checkout(version.store_version)
        return cls(version.id, embedder, store)

    def nearest_documents(self, centroid: np.ndarray, terms: list[str]) -> list[dict]:
        """Up to three documents, best first: {doc_uri, title, heading, similarity} of each one's closest chunk."""
        if self.store is None:
            return []
        best: dict[str, dict] = {}
        for hit in self.store.search(" ".join(terms), centroid, HITS, mode="dense"):
            similarity = hit.similarity if hit.similarity is not None else hit.score
            if hit.doc_uri not in best or similarity > best[hit.doc_uri]["similarity"]:
                best[hit.doc_uri] = {"doc_uri": hit.doc_uri, "title": hit.title[:200], "heading": hit.heading[:200],
                                     "similarity": round(float(similarity), 4)}
        return sorted(best.values(), key=lambda d: -d["similarity"])[:DOCUMENTS]

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
