"""Search results in one shape for every backend, and the hybrid fusion they all share.

Both backends run the dense and the BM25 query themselves and fuse them here, so a hybrid score means the same
thing on LanceDB and Weaviate, and `SearchHit.similarity` is the cosine similarity from the dense query on both.
"""

from __future__ import annotations

from ragops.index import SearchHit

COLUMNS = ["chunk_id", "doc_uri", "chunk_hash", "ordinal", "heading", "title", "text"]
RRF_CONSTANT = 60


def depth(k: int) -> int:
    """How many candidates each retriever contributes, so a passage ranked k+1 by one of them still counts."""
    return max(k * 3, 20)


def to_hit(row: dict, score: float | None = None) -> SearchHit:
    """A row with the COLUMNS and `_distance` (cosine distance, dense) or `_score` (BM25)."""
    similarity = 1.0 - float(row["_distance"]) if row.get("_distance") is not None else None
    if score is None:
        score = similarity if similarity is not None else float(row.get("_score") or 0.0)
    return SearchHit(row["chunk_id"], row["doc_uri"], float(score), row["text"], row.get("heading") or "",
                     row.get("title") or "", similarity)


def reciprocal_rank_fusion(dense: list[dict], sparse: list[dict], k: int,
                           constant: int = RRF_CONSTANT) -> list[SearchHit]:
    """RRF (Cormack et al. 2009): score = sum of 1 / (constant + rank) over the lists a passage appears in."""
    scores: dict[str, float] = {}
    rows: dict[str, dict] = {}
    for ranked in (dense, sparse):
        for rank, row in enumerate(ranked, start=1):
            scores[row["chunk_id"]] = scores.get(row["chunk_id"], 0.0) + 1.0 / (constant + rank)
            rows.setdefault(row["chunk_id"], row)  # the dense row comes first and carries the similarity
    best = sorted(scores, key=lambda cid: (-scores[cid], cid))[:k]
    return [to_hit(rows[cid], scores[cid]) for cid in best]
