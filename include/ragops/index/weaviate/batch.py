"""Batch writes into a Weaviate collection: failed objects are retried, then reported; never silently dropped."""

from __future__ import annotations

import logging
import time
from typing import Callable, Iterable

from ragops.errors import StoreUnavailable

log = logging.getLogger(__name__)
BATCH_SIZE = 200
ATTEMPTS = 3
PAUSE_S = 1.0  # before the first retry; doubled before each next one


def write_objects(collection, objects: Iterable[tuple[str, dict, dict]], *, attempts: int = ATTEMPTS,
                  batch_size: int = BATCH_SIZE, sleep: Callable[[float], None] = time.sleep) -> int:
    """Write (uuid, properties, {vector name: vector}) objects; return how many were written, or raise StoreUnavailable.

    The client's batch records per-object failures in `collection.batch.failed_objects` instead of raising
    (docs.weaviate.io, "Batch import: error handling"). Those objects are sent again up to `attempts` times in all,
    with a growing pause; whatever still fails fails the write, with the server's reasons.
    """
    pending: Iterable[tuple[str, dict, dict]] = objects
    written = 0
    for attempt in range(1, attempts + 1):
        sent = 0
        with collection.batch.fixed_size(batch_size=batch_size) as batch:
            for uuid, properties, vector in pending:
                batch.add_object(properties=properties, uuid=uuid, vector=vector)
                sent += 1
        failed = list(collection.batch.failed_objects)
        written += sent - len(failed)
        if not failed:
            return written
        reasons = sorted({f.message for f in failed})
        log.warning("Weaviate rejected %d of %d objects for %s (attempt %d of %d): %s", len(failed), sent,
                    collection.name, attempt, attempts, "; ".join(reasons)[:500])
        pending = [(str(f.object_.uuid), f.object_.properties, f.object_.vector) for f in failed]
        if attempt < attempts:
            sleep(PAUSE_S * 2 ** (attempt - 1))
    raise StoreUnavailable(f"{len(pending)} objects could not be written to Weaviate collection {collection.name} "
                           f"after {attempts} attempts: {'; '.join(reasons)[:500]}")
