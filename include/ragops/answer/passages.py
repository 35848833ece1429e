"""From ranked chunks to the passages a reader (and the context budget) gets.

Chunks are small so that ranking is precise; a passage is the ranked chunk grown with its neighbours inside the
same section, up to `expand_chars`, so the answer's surroundings come along. Passages never overlap: a chunk
already shown in an earlier passage is not repeated, and a heading line is printed once per passage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ragops.answer.abstention import terms
from ragops.index import SearchHit

RRF_CONSTANT = 60


@dataclass(frozen=True)
class RetrievalConfig:
    """Query-time retrieval knobs; a release's answer config may override each (chosen by cross-validation)."""

    mode: str = "hybrid"
    dense_weight: float = 0.5
    bm25_weight: float = 0.5
    depth: int = 50  # candidates from each retriever before fusion
    expand_chars: int = 1000  # grow each passage with its section's neighbours up to this size; 0 turns it off
    dedupe: bool = True  # skip a chunk whose text an earlier passage shows (reused modules); 5-fold CV chose it
    per_document: int = 0  # at most this many passages from one document; 0 = no cap (a cap of 2 lost 0.03 recall)
    focus: bool = False  # grow towards the neighbour sharing more query terms (else forward first); no gain in CV
    rerank: str = ""  # a reranker (models/rerank.py: trained:reranker/<n>, a CrossEncoder name or path); "" = none
    rerank_depth: int = 20  # passages the reranker reorders; the rest keep their fused order after them
    pack_chars: int = 0  # fill this many characters with the answering sentences of the passages (packing.py); 0 = off
    pack_from: int = 20  # packing reads the top this many passages (then k no longer limits them)
    pack_neighbours: int = 1  # each unit packing chooses comes with this many units before and after it

    @classmethod
    def from_config(cls, config: dict | None) -> "RetrievalConfig":
        known = {k: v for k, v in (config or {}).items() if k in cls.__dataclass_fields__}
        return cls(**known)


def weighted_rrf(ranked: list[tuple[float, list[SearchHit]]], limit: int) -> list[SearchHit]:
    """Weighted reciprocal rank fusion; a fused hit keeps the dense similarity when any list carried it."""
    scores: dict[str, float] = {}
    best: dict[str, SearchHit] = {}
    for weight, hits in ranked:
        for rank, hit in enumerate(hits, start=1):
            scores[hit.chunk_id] = scores.get(hit.chunk_id, 0.0) + weight / (RRF_CONSTANT + rank)
            kept = best.get(hit.chunk_id)
            if kept is None or (kept.similarity is None and hit.similarity is not None):
                best[hit.chunk_id] = hit
    order = sorted(scores, key=lambda cid: (-scores[cid], cid))[:limit]
    return [SearchHit(best[c].chunk_id, best[c].doc_uri, scores[c], best[c].text, best[c].heading, best[c].title,
                      best[c].similarity) for c in order]


def _body(hit: SearchHit) -> str:
    if hit.heading and hit.text.startswith(hit.heading):
        return hit.text[len(hit.heading):].lstrip("\n")
    return hit.text


def _shared(hit: SearchHit, query_terms: set[str]) -> int:
    return len(query_terms & set(terms(_body(hit))))


def _key(hit: SearchHit) -> str:
    return " ".join(_body(hit).split()).lower()


def expand(hits: list[SearchHit], document: Callable[[str], list[SearchHit]], k: int,
           expand_chars: int, dedupe: bool = False, per_document: int = 0,
           query_terms: set[str] | None = None) -> list[SearchHit]:
    """Up to k non-overlapping passages, each a ranked chunk grown forward, then backward, within its section.

    `dedupe`: a chunk whose body text was already shown (the same module reused by another guide or section) is
    neither a passage of its own nor added to one. `per_document`: at most that many passages per document (0: any).
    `query_terms`: when given, a passage grows towards the neighbour that shares more of them (ties: forward).
    """
    used: set[str] = set()
    shown: set[str] = set()
    per_doc: dict[str, int] = {}
    passages: list[SearchHit] = []
    for hit in hits:
        if len(passages) == k:
            break
        if hit.chunk_id in used or (dedupe and _key(hit) in shown):
            continue
        if per_document and per_doc.get(hit.doc_uri, 0) >= per_document:
            continue
        per_doc[hit.doc_uri] = per_doc.get(hit.doc_uri, 0) + 1
        if dedupe:
            shown.add(_key(hit))
        chunks = document(hit.doc_uri) if expand_chars > 0 else []
        position = next((i for i, c in enumerate(chunks) if c.chunk_id == hit.chunk_id), None)
        if position is None:  # not expandable (expansion off, or the document moved on): the chunk alone
            used.add(hit.chunk_id)
            passages.append(SearchHit(hit.chunk_id, hit.doc_uri, hit.score, hit.text, hit.heading, hit.title,
                                      hit.similarity, {"chunk_ids": [hit.chunk_id]}))
            continue
        lo = hi = position
        size = len(hit.text)

        def free(i: int) -> bool:
            return (0 <= i < len(chunks) and chunks[i].chunk_id not in used and chunks[i].heading == hit.heading
                    and not (dedupe and _key(chunks[i]) in shown))

        used.add(hit.chunk_id)
        while size < expand_chars:
            step = hi + 1 if free(hi + 1) else lo - 1 if free(lo - 1) else None
            if query_terms and step == hi + 1 and free(lo - 1) and \
                    _shared(chunks[lo - 1], query_terms) > _shared(chunks[hi + 1], query_terms):
                step = lo - 1
            if step is None:
                break
            used.add(chunks[step].chunk_id)
            if dedupe:
                shown.add(_key(chunks[step]))
            size += len(_body(chunks[step])) + 2
            lo, hi = min(lo, step), max(hi, step)
        span = chunks[lo : hi + 1]
        text = "\n\n".join([span[0].text] + [_body(c) for c in span[1:]])
        passages.append(SearchHit(hit.chunk_id, hit.doc_uri, hit.score, text, hit.heading, hit.title, hit.similarity,
                                  {"chunk_ids": [c.chunk_id for c in span]}))
    return passages
