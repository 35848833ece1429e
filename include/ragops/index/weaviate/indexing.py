"""Waiting, with a deadline, until Weaviate's vector index holds what a write sent.

The client's own `batch.wait_for_vector_indexing` polls with no time limit: one shard that never becomes ready (a
stuck vector queue, a node that lost its disk) would hold the refresh, and its lease, forever. This polls the same
shard status (`GET /v1/schema/<collection>/shards`, through `collection.config.get_shards()`) until every shard is
READY with an empty vector queue, and raises IndexingTimeout once the deadline passes. A status request that fails
is tried again at the next poll, as the client does, but never past the deadline.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from ragops.errors import IndexingTimeout

log = logging.getLogger(__name__)
POLL_S = 0.25  # the client's own polling interval
MAX_POLL_S = 5.0  # the pause grows to this, so a long wait costs few requests


def _ready(shard) -> bool:
    per_node = getattr(shard, "per_node_status", None)
    if per_node:
        ready = all(status == "READY" for status in per_node.values())
    else:
        ready = shard.status == "READY"
    return ready and not shard.vector_queue_size


def _describe(shards) -> str:
    return ", ".join(f"{s.name}: {s.status or '?'} with {s.vector_queue_size} vectors queued" for s in shards)[:500]


def wait_until_indexed(collection, deadline_s: float, *, clock: Callable[[], float] = time.monotonic,
                       sleep: Callable[[float], None] = time.sleep) -> int:
    """How many polls it took until every shard of `collection` was indexed; IndexingTimeout past the deadline."""
    import httpx
    from weaviate.exceptions import WeaviateBaseError

    start, pause, polls = clock(), POLL_S, 0
    while True:
        polls += 1
        try:
            shards, seen = collection.config.get_shards(), ""
        except (WeaviateBaseError, httpx.HTTPError) as exc:  # a lost request: ask again at the next poll
            shards, seen = [], f"the last status request failed: {exc}"
            log.warning("cannot read the shard status of %s (poll %d): %s", collection.name, polls, exc)
        if shards and all(_ready(s) for s in shards):
            return polls
        waited = clock() - start
        if waited >= deadline_s:
            raise IndexingTimeout(
                f"Weaviate did not finish indexing {collection.name} within {deadline_s:g} s "
                f"(RAGOPS_WEAVIATE_INDEX_WAIT_S): {seen or _describe(shards) or 'no shards reported'}; the "
                "half-built version is deleted and the refresh can be retried")
        sleep(min(pause, max(0.0, deadline_s - waited)))
        pause = min(pause * 2, MAX_POLL_S)
