"""Search the live index version: embed the query (batched, cached), rank (dense, BM25, weighted fusion), expand.

The results are passages (answer/passages.py): a ranked chunk with its section's neighbours, never overlapping.
With `pack_chars` set, they are packed (answer/packing.py): the answering sentences of the top `pack_from`
passages, within that many characters. `retrieve` also returns the evidence the answer pipeline weighs before it
answers (answer/abstention.py), always weighed on the unpacked passages.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Sequence

from ragops.answer.abstention import AbstentionPolicy, Evidence, Vocabulary, evidence, terms
from ragops.answer.packing import EmbeddingScorer, Scorer, pack
from ragops.answer.passages import RetrievalConfig, expand, weighted_rrf
from ragops.answer.query_encoding import QueryEncoder, normalize_query
from ragops.config import Settings
from ragops.errors import EmbeddingModelError, StoreUnavailable
from ragops.index import IndexStore, SearchHit, SearchMode, open_store
from ragops.ingest.embedding import Embedder
from ragops.models import Reranker
from ragops.registry import Registry
from ragops.registry.db import live_index_version

log = logging.getLogger(__name__)
DOCUMENTS_KEPT = 256  # documents whose chunk lists stay in memory for expansion


@dataclass
class Retrieved:
    hits: list[SearchHit]
    similarity: float | None  # the best dense similarity of any chunk to the query
    evidence: Evidence | None = None
    chunk_ids: list[str] = field(default_factory=list)


class Retriever:
    """Reads one pinned index version, so a refresh that is writing never shows half its work."""

    def __init__(self, settings: Settings, registry: Registry | None = None, embedder: Embedder | None = None,
                 store: IndexStore | None = None, index_version: int | None = None,
                 queries: QueryEncoder | None = None, reranker: Reranker | None = None):
        self.settings = settings
        self.reranker = reranker  # the reader packing scores sentences with; None: the embedding scorer
        self.registry = registry or Registry(settings.registry_url)
        self.embedder = embedder or Embedder.from_settings(settings)
        self.queries = queries
        self.index_version, self.store = self._open(store, index_version)
        if self.queries is None or self.queries.embedder.model_name != self.embedder.model_name:
            self.queries = QueryEncoder.from_settings(settings, self.embedder)
        self._documents: OrderedDict[str, list[SearchHit]] = OrderedDict()
        self._vocabulary: Vocabulary | None = None
        self._unit_scorer: EmbeddingScorer | None = None
        self._lock = threading.Lock()

    def _open(self, store: IndexStore | None, index_version: int | None) -> tuple[int, IndexStore]:
        from ragops.registry.models import IndexVersion

        with self.registry.session() as s:
            version = s.get(IndexVersion, index_version) if index_version else live_index_version(s)
        if version is None:
            raise StoreUnavailable("there is no index yet: run `ragops refresh` (or the document_refresh DAG) first")
        if version.status == "pruned":
            raise StoreUnavailable(f"index version {version.id} ({version.collection} v{version.store_version}) was "
                                   "pruned by the retention policy")
        if version.embedding_model != self.embedder.model_name:  # queries must be embedded like the index was
            self.embedder = Embedder.from_settings(self.settings, version.embedding_model)
        store = store or open_store(self.settings, version.collection)
        store.checkout(version.store_version)
        return version.id, store

    # -- ranking -------------------------------------------------------------------------------------
    def retrieve(self, query: str, k: int = 5, mode: SearchMode | None = None, config: dict | None = None,
                 policy: AbstentionPolicy | None = None) -> Retrieved:
        cfg = RetrievalConfig.from_config(config)
        if not cfg.rerank and (self.settings.reranker_model or self.settings.reranker_endpoint):
            from ragops.models.rerank import configured

            cfg = replace(cfg, rerank=configured(self.settings, None))
        mode = mode or cfg.mode
        depth = max(cfg.depth, k)
        dense = bm25 = []
        if mode != "bm25":
            dense = self.store.search(query, self.queries.encode(query), depth, "dense")
        if mode != "dense":
            bm25 = self.store.search(query, None, depth, "bm25")
        if mode == "hybrid":
            ranked = weighted_rrf([(cfg.dense_weight, dense), (cfg.bm25_weight, bm25)], depth)
        else:
            ranked = dense or bm25
        wanted = max(k, cfg.rerank_depth if cfg.rerank else 0, cfg.pack_from if cfg.pack_chars > 0 else 0)
        passages = expand(ranked, self.document, wanted, cfg.expand_chars, cfg.dedupe, cfg.per_document,
                          set(terms(query)) if cfg.focus else None)
        if cfg.rerank:
            passages = self.rerank(query, passages, cfg)
        hits = passages[:k]
        if cfg.pack_chars > 0:
            hits = pack(query, passages[: cfg.pack_from], self.scorer(cfg), cfg.pack_chars, cfg.pack_neighbours)
        similarity = dense[0].similarity if dense else None
        found = Retrieved(hits, similarity, chunk_ids=[c for h in hits for c in h.extra.get("chunk_ids", [h.chunk_id])])
        if policy is not None and passages:  # expansion is greedy in rank order: its first k are the unpacked hits
            found.evidence = evidence(query, passages[:k], similarity, self.vocabulary(), policy)
        return found

    def rerank(self, query: str, hits: list[SearchHit], cfg: RetrievalConfig) -> list[SearchHit]:
        """The first `rerank_depth` passages in the reranker's order (stable for ties), the rest after them."""
        head, tail = hits[: cfg.rerank_depth], hits[cfg.rerank_depth :]
        try:
            scores = self._reranker(cfg.rerank).score(query, [h.text for h in head])
        except EmbeddingModelError as exc:  # a reranker endpoint that is down: answer in the fused order
            log.warning("reranker %s failed, passages keep their fused order: %s", cfg.rerank, exc)
            return hits
        order = sorted(range(len(head)), key=lambda i: -scores[i])
        for i in order:
            head[i].extra["rerank_score"] = scores[i]
        return [head[i] for i in order] + tail

    def _reranker(self, name: str):
        from ragops.models.rerank import reranker_for

        return reranker_for(self.settings, name, self.embedder.precision)

    def scorer(self, cfg: RetrievalConfig | None = None) -> Scorer:
        """The reader packing ranks sentences with: the configured reranker, else query-unit cosine."""
        if cfg is not None and cfg.rerank:
            return self._reranker(cfg.rerank).score
        if self.reranker is not None:
            return self.reranker.score
        if self._unit_scorer is None:
            self._unit_scorer = EmbeddingScorer(self.embedder, self.queries)
        return self._unit_scorer

    def search(self, query: str, k: int = 5, mode: SearchMode | None = None, config: dict | None = None) -> list[SearchHit]:
        return self.retrieve(query, k, mode, config).hits

    def search_many(self, queries: Sequence[str], k: int = 5, mode: SearchMode | None = None) -> list[list[SearchHit]]:
        """Embed all queries in one batch (filling the query cache), then search each."""
        if mode != "bm25" and queries:
            keys = list(dict.fromkeys(normalize_query(q, self.queries.lowercase) for q in queries))
            for key, vector in zip(keys, self.embedder.encode(keys)):
                self.queries.cache.put((self.queries.key, key), vector)
        return [self.search(q, k, mode) for q in queries]

    # -- what the index holds ------------------------------------------------------------------------
    def document(self, doc_uri: str) -> list[SearchHit]:
        """A document's chunks in reading order, from a bounded in-memory cache (the version is pinned)."""
        with self._lock:
            chunks = self._documents.get(doc_uri)
            if chunks is not None:
                self._documents.move_to_end(doc_uri)
                return chunks
        chunks = self.store.document(doc_uri)
        with self._lock:
            self._documents[doc_uri] = chunks
            while len(self._documents) > DOCUMENTS_KEPT:
                self._documents.popitem(last=False)
        return chunks

    def vocabulary(self) -> Vocabulary:
        """Term document frequencies of this index version, built once on first use."""
        if self._vocabulary is None:
            with self._lock:
                if self._vocabulary is None:
                    self._vocabulary = Vocabulary((r["text"] for r in self.store.rows(["text"])),
                                                  self.embedder.is_common_word)
        return self._vocabulary
