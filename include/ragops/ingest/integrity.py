"""Reading an index collection in full, to tell a damaged one (truncated or missing files) from a sound one."""

from __future__ import annotations

import re

import numpy as np

from ragops.errors import StoreUnavailable
from ragops.index import IndexStore

READ = ("chunk_id", "doc_uri", "chunk_hash", "ordinal", "heading", "title", "text", "vector")  # every stored column
BATCH_ROWS = 1024  # rows held at once while reading through a collection


def read_error(store: IndexStore) -> str | None:
    """Why the store's collection (its pinned version) cannot be read in full, else None: every column of every row,
    then one dense and one BM25 query, so the vector and full-text indices are read too. One streamed pass."""
    try:
        if not store.exists():
            return None
        probe: dict = {}
        for batch in store.scan(READ, BATCH_ROWS):  # streamed: the memory held is one batch, not the collection
            probe = probe or (batch[0] if batch else {})
        if probe:
            store.search("", np.asarray(probe["vector"], dtype=np.float32), 1, "dense")
            words = re.findall(r"[^\W_]+", probe["text"])[:1]  # one plain word: no query syntax to trip over
            if words:
                store.search(words[0], None, 1, "bm25")
    except StoreUnavailable as exc:
        return str(exc)
    except (OSError, RuntimeError, ValueError, KeyError) as exc:  # what LanceDB raises for damaged files
        return f"{type(exc).__name__}: {exc}"
    return None
