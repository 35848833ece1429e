"""Structure-aware chunking: pack a section's paragraphs up to the embedding model's token limit.

Each chunk carries its heading path as a first line, so a chunk read alone still says where it is. That line is
capped at a quarter of the model's window and of a chunk's characters, so a long heading adds a bounded prefix to
each chunk, not its whole self (issue 22: quadratic cost).
No chunk exceeds the token window or a character bound, whatever the input: a 1 MB line without spaces is one
unknown token to a WordPiece tokenizer, so tokens alone do not bound a chunk's size.
Ids are content hashes: an edited paragraph changes only the chunks that contain it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Callable, Sequence

from ragops.ingest.parsing import ParseBudget, ParsedDocument

TokenCounter = Callable[[Sequence[str]], list[int]]

HEADING_SHARE = 4  # the heading line takes at most 1/4 of the window's tokens and of a chunk's characters
# Prose averages 4-5 characters a token; a chunk allowed 16 a token holds any real text its token budget allows.
CHARS_PER_TOKEN = 16
CHECK_EVERY_PARAGRAPHS = 64  # a look at the parse budget's clock is cheap, but not free

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


@dataclass(frozen=True)
class _Fit:
    """What a chunk's body may hold: tokens and characters, and the tokenizer that measures them."""

    tokens: int
    chars: int
    count: TokenCounter
    heading: str = ""
    window: int = 0

    def holds(self, tokens: int, chars: int) -> bool:
        return tokens <= self.tokens and chars <= self.chars

    def alone(self, piece: str, tokens: int) -> bool:
        """Whether a piece fits as a chunk's whole body. The budget counts the special tokens of the piece and of
        the heading apart, so a piece a little over it may still fit the window beside the heading."""
        if len(piece) > self.chars:
            return False
        alone = f"{self.heading}\n\n{piece}" if self.heading else piece
        return tokens <= self.tokens or self.count([alone])[0] <= self.window


def _heading_lines(doc: ParsedDocument, window: int, max_chars: int, count: TokenCounter) -> list[tuple[str, int]]:
    """Each section's heading line and its tokens: the path, or the title, cut to a prefix within the heading share.

    Each heading is cut to the character share before it is joined or counted, so a long heading repeated in many
    sections' paths is not copied or tokenized whole each time. A line with too many tokens is cut in proportion
    until it fits; headings within the share are kept exactly as they are.
    """
    cap_tokens, cap_chars = window // HEADING_SHARE, max_chars // HEADING_SHARE
    lines = [(" > ".join(h[:cap_chars] for h in s.path) or doc.title[:cap_chars])[:cap_chars] for s in doc.sections]
    out = []
    for line, size in zip(lines, count(lines)):
        while size > cap_tokens and line:
            line = line[: min(len(line) - 1, len(line) * cap_tokens // size)].rstrip()
            size = count([line])[0]
        out.append((line, size))
    return out


def _split_oversized(piece: str, tokens: int, fit: _Fit) -> list[str]:
    """Split one paragraph over the token or character budget: by sentences first, then words, then characters."""
    sentences = [s for s in _SENTENCE.split(piece) if s.strip()]
    if len(sentences) > 1:
        out: list[str] = []
        current, current_tokens, current_chars = [], 0, 0
        for sentence, size in zip(sentences, fit.count(sentences)):
            if not fit.holds(size, len(sentence)):
                if current:
                    out.append(" ".join(current))
                    current, current_tokens, current_chars = [], 0, 0
                out.extend(_split_oversized_words(sentence, size, fit))
            elif current and not fit.holds(current_tokens + size, current_chars + 1 + len(sentence)):
                out.append(" ".join(current))
                current, current_tokens, current_chars = [sentence], size, len(sentence)
            else:
                current_chars += len(sentence) + (1 if current else 0)
                current.append(sentence)
                current_tokens += size
        if current:
            out.append(" ".join(current))
        return out
    return _split_oversized_words(piece, tokens, fit)


def _split_oversized_words(piece: str, tokens: int, fit: _Fit) -> list[str]:
    """Cut at words in proportion to the overshoot, then cut again any piece that still does not fit."""
    words = piece.split()
    if len(words) < 2:
        return [piece] if fit.alone(piece, tokens) else _split_chars(piece, fit)
    ratio = min(fit.tokens / max(tokens, 1), fit.chars / max(len(piece), 1))
    per_piece = max(1, int(len(words) * ratio * 0.9))
    pieces = [" ".join(words[i : i + per_piece]) for i in range(0, len(words), per_piece)]
    out: list[str] = []
    for part, size in zip(pieces, fit.count(pieces)):
        out.extend([part] if fit.alone(part, size) else _split_oversized_words(part, size, fit))
    return out


def _split_chars(word: str, fit: _Fit) -> list[str]:
    """One word over budget (a long line without spaces): slices within the character budget, halved while a slice
    still has too many tokens; a single character is always kept."""
    slices = [word[i : i + fit.chars] for i in range(0, len(word), fit.chars)]
    out: list[str] = []
    for part, size in zip(slices, fit.count(slices)):
        if size <= fit.tokens or len(part) == 1:
            out.append(part)
        else:
            out.extend(_split_chars(part, _Fit(fit.tokens, max(1, len(part) // 2), fit.count)))
    return out


def chunk_document(doc: ParsedDocument, doc_uri: str, max_tokens: int, count: TokenCounter,
                   window: int | None = None, budget: ParseBudget | None = None) -> list[Chunk]:
    """Chunk a parsed document; `count` returns the token length of each text (batched).

    Chunks are packed to `max_tokens`; none exceeds `window` (the model's, default `max_tokens`) tokens or
    `window * CHARS_PER_TOKEN` characters, heading included. `budget` is the document's parse budget, checked as
    paragraphs are packed: parsing and chunking share one deadline.
    """
    window = window or max_tokens
    max_chars = window * CHARS_PER_TOKEN
    paragraphs = [[p.strip() for p in _PARAGRAPH.split(s.text) if p.strip()] for s in doc.sections]
    flat = [p for ps in paragraphs for p in ps]
    if not flat:
        return []
    sizes = iter(count(flat))
    para_sizes = [[next(sizes) for _ in ps] for ps in paragraphs]
    headings = _heading_lines(doc, window, max_chars, count)

    texts: list[tuple[str, str]] = []
    packed = 0
    for (heading, h_size), ps, ps_sizes in zip(headings, paragraphs, para_sizes):
        tokens = min(max(16, max_tokens - h_size - 2), window - h_size - 2)  # the heading takes at most 1/4 of window
        fit = _Fit(max(1, tokens), max(1, max_chars - len(heading) - 2), count, heading, window)
        current: list[str] = []
        current_tokens = current_chars = 0
        for paragraph, size in zip(ps, ps_sizes):
            packed += 1
            if budget is not None and packed % CHECK_EVERY_PARAGRAPHS == 0:
                budget.check()
            pieces = [(paragraph, size)]
            if not fit.holds(size, len(paragraph)):
                split = _split_oversized(paragraph, size, fit)
                pieces = list(zip(split, count(split)))
            for piece, piece_size in pieces:
                if current and not fit.holds(current_tokens + piece_size, current_chars + 2 + len(piece)):
                    texts.append((heading, "\n\n".join(current)))
                    current, current_tokens, current_chars = [], 0, 0
                current_chars += len(piece) + (2 if current else 0)
                current.append(piece)
                current_tokens += piece_size
        if current:
            texts.append((heading, "\n\n".join(current)))

    bodies = [f"{heading}\n\n{body}" if heading else body for heading, body in texts]
    token_counts = count(bodies) if bodies else []
    if budget is not None:
        budget.check()
    seen: dict[str, int] = {}
    chunks = []
    for ordinal, ((heading, _), body, n_tokens) in enumerate(zip(texts, bodies, token_counts)):
        digest = content_hash(body)
        occurrence = seen.get(digest, 0)
        seen[digest] = occurrence + 1
        chunks.append(Chunk(chunk_id(doc_uri, digest, occurrence), digest, doc_uri, ordinal, heading, body, n_tokens))
    return chunks
