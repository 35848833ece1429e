"""Vectors checked at the store's door: a NaN, an infinity, an all-zero vector or a wrong length is refused.

The remote embedder refuses such answers already (models/remote.py), but a store takes vectors from any caller. A row
whose vector is not finite or is all zero has no cosine distance: LanceDB stored it and no dense query ever found it
again (NaN it refused with a raw Arrow error), and a query vector like it returned no hits at all, silently.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ragops.errors import StoreUnavailable


def checked_rows(vectors: Sequence[np.ndarray], ids: Sequence[str]) -> np.ndarray:
    """The vectors as one float32 matrix; StoreUnavailable naming the first bad chunk when any is unusable."""
    dims = {np.shape(v) for v in vectors}
    if len(dims) != 1 or len(next(iter(dims))) != 1 or next(iter(dims))[0] == 0:
        raise StoreUnavailable(f"the vectors of one write must be non-empty and of one length, not {sorted(dims)[:4]}")
    matrix = np.stack([np.asarray(v, dtype=np.float32) for v in vectors])
    bad = ~np.isfinite(matrix).all(axis=1) | ~(np.abs(matrix).sum(axis=1) > 0)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise StoreUnavailable(f"{int(bad.sum())} chunk(s) have a vector holding NaN or infinity or all zero, "
                               f"first {ids[first]!r}: refused before anything was written")
    return matrix


def checked_query(vector, dim: int | None = None) -> np.ndarray:
    """A dense query vector as float32; StoreUnavailable when it is missing, not finite, all zero or of another length."""
    if vector is None:
        raise StoreUnavailable("a dense or hybrid search needs a query vector")
    query = np.asarray(vector, dtype=np.float32)
    if query.ndim != 1 or (dim is not None and query.shape[0] != dim):
        raise StoreUnavailable(f"the query vector has shape {query.shape}, the collection holds {dim}-dimensional "
                               "vectors")
    if not np.isfinite(query).all() or not np.abs(query).sum() > 0:
        raise StoreUnavailable("the query vector holds NaN or infinity or is all zero: it has no cosine neighbours")
    return query
