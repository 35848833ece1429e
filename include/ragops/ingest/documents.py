"""From source bytes to validated chunks: decode, parse within a budget, chunk, and run the document checks."""

from __future__ import annotations

from typing import Callable

from ragops.config import Settings
from ragops.errors import ParseBudgetExceeded
from ragops.ingest.chunking import chunk_document
from ragops.ingest.embedding import Embedder
from ragops.ingest.parsing import ParseBudget, parse
from ragops.ingest.validation import DocumentFacts, validate_documents
from ragops.sources import SourceDocument

TITLE_CHARS = 512  # the registry's title columns


def _decode(doc: SourceDocument) -> tuple[str | None, bool]:
    """The text and whether the bytes look binary; None text when they are not UTF-8."""
    binary = b"\x00" in doc.content[:8192]
    try:
        return doc.content.decode("utf-8-sig"), binary
    except UnicodeDecodeError:
        return None, binary


def process_documents(settings: Settings, embedder: Embedder, listed: dict[str, SourceDocument], uris: list[str],
                      parse_clock: Callable[[], float] | None = None) -> tuple[dict[str, list], dict[str, str], dict[str, str]]:
    """Decode, parse, chunk and validate documents: (chunks by uri, titles by uri, quarantine reasons by uri).

    Refused documents (outside the root, not regular files, too large) and documents over their parse budget (which
    covers parsing and chunking) are quarantined with that reason and never processed further.
    """
    # never above the model's window: longer texts would be silently truncated when embedded
    max_tokens = min(settings.chunk_max_tokens or embedder.max_tokens, embedder.max_tokens)
    facts, chunks_by_doc, titles, refused = [], {}, {}, {}
    for uri in uris:
        doc = listed[uri]
        chunks_by_doc[uri] = []
        if doc.refused:
            refused[uri] = doc.refused
            continue
        text, binary = _decode(doc)
        chunks, text_chars = [], 0
        if text is not None and not binary and doc.size_bytes <= settings.max_document_bytes:
            budget = ParseBudget(settings.parse_budget_s, *([parse_clock] if parse_clock else []))
            try:  # one budget for parsing and chunking: a heading or a line that chunks slowly is quarantined too
                parsed = parse(text, uri, budget)
                chunks = chunk_document(parsed, uri, max_tokens, embedder.count_tokens, embedder.max_tokens, budget)
            except ParseBudgetExceeded as exc:
                refused[uri] = str(exc)
                continue
            text_chars, titles[uri] = parsed.text_chars, parsed.title[:TITLE_CHARS]
        chunks_by_doc[uri] = chunks
        facts.append(DocumentFacts(uri, doc.size_bytes, text is not None, binary, text_chars, len(chunks)))
    return chunks_by_doc, titles, validate_documents(facts, settings.max_document_bytes) | refused
