"""Request events: one per request of every kind, written off the hot path, none lost on a clean shutdown."""

import time

from support import events
from ragops.monitoring.events import EventWriter
from ragops.registry import Registry


def test_every_kind_of_request_leaves_an_event(make_client, indexed):
    from serving.ratelimit import RateLimiter

    client = make_client(indexed.model_copy(update={"rate_limit_address": "2/minute"}),
                         limiter=RateLimiter("2/minute", "100/minute"))
    client.post("/v1/ask", json={"question": "What blocks a mass delete?", "user_id": "u"})
    client.post("/v1/ask", json={"question": "Pizza dough hydration?", "user_id": "u"})
    client.post("/v1/ask", json={"question": "again", "user_id": "u"})
    client.post("/v1/ask", json={"question": ""})
    client.app.state.events.flush()
    rows = events(indexed)
    assert [(r.status, r.fallback) for r in rows] == [(200, None), (200, "no_results"), (429, "rate_limited"), (422, None)]
    assert rows[0].variant == "stable" and rows[0].release_id is not None and rows[0].latency_ms > 0
    assert rows[0].chunk_ids and rows[0].user_hash == rows[1].user_hash
    assert len({r.request_id for r in rows}) == 4


def test_record_is_cheap_and_close_drains(tmp_path):
    registry = Registry(f"sqlite:///{tmp_path / 'r.sqlite'}")
    writer = EventWriter(registry, interval_s=5.0)  # a long interval: only close() can have written these
    started = time.perf_counter()
    for i in range(2000):
        writer.record("request", request_id=str(i), endpoint="/v1/ask", user_hash="h", variant="stable",
                      release_id=1, latency_ms=1.0, status=200, fallback=None, chunk_ids=[])
    per_event_us = (time.perf_counter() - started) / 2000 * 1e6
    assert per_event_us < 200, f"record() took {per_event_us:.0f} us per event"
    writer.close()
    assert writer.written == 2000
    from sqlalchemy import func, select

    from ragops.registry.models import RequestEvent

    with registry.session() as s:
        assert s.scalar(select(func.count()).select_from(RequestEvent)) == 2000
