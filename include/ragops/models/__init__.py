"""Models of relevance beside the embedder: rerankers (a reader that scores query-passage pairs), local or remote.

A reranker scores how well each text answers a query; higher is better, and scores compare only within one call.
Implementations: a sentence-transformers CrossEncoder by name or path (`models.rerank`, also the model that
`ragops.training` trains from the corpus) and Hugging Face text-embeddings-inference's `/rerank` (`models.remote`).
"""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable


@runtime_checkable
class Reranker(Protocol):
    """Scores (query, text) pairs; `name` identifies the model in evaluation reports and release configs."""

    name: str

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """One relevance score per text, in the order given. Raises EmbeddingModelError when the model fails."""
