"""Structure-aware chunking: pack a section's paragraphs up to the embedding model's token limit.

Each chunk carries its heading path as a first line, so a chunk read alone still says where it is.
Ids are content hashes: an edited paragraph changes only the chunks that contain it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Callable, Sequence

from ragops.ingest.parsing import ParsedDocument

TokenCounter = Callable[[Sequence[str]], list[int]]

# Audited for backtracking (issue 8): both match in time linear in the text. A paragraph break can only start at a
# newline and one match consumes its whole run of whitespace; a sentence break is one fixed-width look-behind and
# one run of whitespace. tests/include/ragops/ingest/test_parsing_fuzz.py drives them with 1 MB pumped inputs.
_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE = re.compile(r"(?<=[.!?:;])\s+")


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    chunk_hash: str
    doc_uri: str
    ordinal: int
    heading: str
    text: str
    n_tokens: int


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chunk_id(doc_uri: str, chunk_hash: str, occurrence: int) -> str:
    return hashlib.sha256(f"{doc_uri}\0{chunk_hash}\0{occurrence}".encode()).hexdigest()[:32]


def _split_oversized(piece: str, tokens: int, budget: int, count: TokenCounter) -> list[str]:
    """Split one paragraph that exceeds the budget: by sentences first, by words as a last resort."""
    sentences = [s for s in _SENTENCE.split(piece) if s.strip()]
    if len(sentences) > 1:
        parts, sizes = sentences, count(sentences)
        out: list[str] = []
        current, current_tokens = [], 0
        for sentence, size in zip(parts, sizes):
            if size > budget:
                if current:
                    out.append(" ".join(current))
                    current, current_tokens = [], 0
                out.extend(_split_oversized_words(sentence, size, budget))
            elif current_tokens + size > budget and current:
                out.append(" ".join(current))
                current, current_tokens = [sentence], size
            else:
                current.append(sentence)
                current_tokens += size
        if current:
            out.append(" ".join(current))
        return out
    return _split_oversized_words(piece, tokens, budget)


def _split_oversized_words(piece: str, tokens: int, budget: int) -> list[str]:
    words = piece.split()
    per_piece = max(1, int(len(words) * budget / max(tokens, 1) * 0.9))
    return [" ".join(words[i : i + per_piece]) for i in range(0, len(words), per_piece)]


def chunk_document(doc: ParsedDocument, doc_uri: str, max_tokens: int, count: TokenCounter) -> list[Chunk]:
    """Chunk a parsed document; `count` returns the token length of each text (batched)."""
    sections = [(" > ".join(s.path) or doc.title, s.text) for s in doc.sections]
    paragraphs = [[p.strip() for p in _PARAGRAPH.split(text) if p.strip()] for _, text in sections]
    flat = [p for ps in paragraphs for p in ps]
    headings = [h for h, _ in sections]
    sizes = iter(count(flat + headings)) if flat else iter(())
    para_sizes = [[next(sizes) for _ in ps] for ps in paragraphs]
    heading_sizes = [next(sizes) for _ in headings] if flat else []

    texts: list[tuple[str, str]] = []
    for (heading, _), ps, ps_sizes, h_size in zip(sections, paragraphs, para_sizes, heading_sizes):
        budget = max(16, max_tokens - h_size - 2)
        current: list[str] = []
        current_tokens = 0
        for paragraph, size in zip(ps, ps_sizes):
            pieces = [(paragraph, size)]
            if size > budget:
                split = _split_oversized(paragraph, size, budget, count)
                pieces = list(zip(split, count(split)))
            for piece, piece_size in pieces:
                if current and current_tokens + piece_size > budget:
                    texts.append((heading, "\n\n".join(current)))
                    current, current_tokens = [], 0
                current.append(piece)
                current_tokens += piece_size
        if current:
            texts.append((heading, "\n\n".join(current)))

    bodies = [f"{heading}\n\n{body}" if heading else body for heading, body in texts]
    token_counts = count(bodies) if bodies else []
    seen: dict[str, int] = {}
    chunks = []
    for ordinal, ((heading, _), body, n_tokens) in enumerate(zip(texts, bodies, token_counts)):
        digest = content_hash(body)
        occurrence = seen.get(digest, 0)
        seen[digest] = occurrence + 1
        chunks.append(Chunk(chunk_id(doc_uri, digest, occurrence), digest, doc_uri, ordinal, heading, body, n_tokens))
    return chunks
