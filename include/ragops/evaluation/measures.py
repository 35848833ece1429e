"""Containment-based retrieval measures, robust to reference contexts much longer than a chunk.

Answer-token recall is defined as in the RHDH evaluation set's README (docs/benchmarks.md): the share of the
reference answer's content words found in the retrieved context (results in rank order, concatenated until 4,000
characters); a hit is a recall of at least 0.8.
"""

from __future__ import annotations

import re

STOP = set("the a an of to and or in on for with is are be by as at from that this it its can you your use using which "
           "when what how do does".split())
_TOKEN = re.compile(r"[a-z0-9]+")
CONTEXT_CHARS = 4000
HIT_RECALL = 0.8


def tokens(text: str) -> list[str]:
    return [t for t in _TOKEN.findall(text.lower()) if t not in STOP]


def context_until(texts: list[str], limit: int = CONTEXT_CHARS) -> str:
    out, used = [], 0
    for text in texts:
        if used >= limit:
            break
        out.append(text[: limit - used])
        used += len(out[-1])
    return "\n".join(out)


def token_recall(reference: str, context: str) -> float:
    wanted = set(tokens(reference))
    if not wanted:
        return 1.0
    return len(wanted & set(tokens(context))) / len(wanted)


def doc_rank(retrieved_uris: list[str], reference_doc_ids: list[str]) -> int | None:
    """1-based rank of the first result from a reference document (matched by URI suffix), or None."""
    for rank, uri in enumerate(retrieved_uris, start=1):
        if any(uri.endswith(doc_id) for doc_id in reference_doc_ids):
            return rank
    return None


def context_rank(retrieved_texts: list[str], reference_contexts: list[str], threshold: float = 0.8) -> int | None:
    """1-based rank of the first passage that contains a reference context or is contained in one.

    Containment either way: RHDH references are whole sections (a chunk lies inside them), hand-written ones are
    often one sentence (it lies inside a chunk). Token sets, so formatting and wrapping do not matter.
    """
    references = [set(tokens(c)) for c in reference_contexts]
    for rank, text in enumerate(retrieved_texts, start=1):
        body = text.split("\n\n", 1)[-1]  # the heading line is ours, not the document's
        words = set(tokens(body))
        for ref in references:
            shared = len(words & ref)
            if words and ref and (shared / len(words) >= threshold or shared / len(ref) >= threshold):
                return rank
    return None
