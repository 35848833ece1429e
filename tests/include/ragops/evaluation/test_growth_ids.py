"""Proposed test questions get distinct ids even when clients choose request ids (X-Request-ID) that share a long
prefix: a collision made `accept` refuse the second reviewed item as "already in the grown set"."""

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from ragops.evaluation import growth
from ragops.registry import Registry
from ragops.registry.models import Feedback, RequestEvent

NOW = datetime.now(timezone.utc)


class Service:
    embedder = None

    def __init__(self, embedder):
        self.embedder = embedder

    async def ask(self, question, user):
        return SimpleNamespace(answer="today's answer", fallback=None)


def test_down_voted_requests_with_a_shared_id_prefix_get_distinct_candidate_ids(indexed, embedder):
    registry = Registry(indexed.registry_url)
    with registry.session() as s:
        for i, question in enumerate(("how do I rotate the signing key?", "which port does grafana use?")):
            rid = f"my-app-request-{i}"
            s.add(RequestEvent(ts=NOW - timedelta(hours=1), request_id=rid, endpoint="/v1/ask", user_hash="u1",
                               variant="stable", latency_ms=9.0, status=200, synthetic=False, verified=True,
                               question=question, similarity=0.6, coverage=0.7))
            s.add(Feedback(ts=NOW - timedelta(minutes=30), request_id=rid, user_hash="u1", rating="down",
                           reason="wrong"))
    candidates = growth.propose(indexed, timedelta(days=1), registry=registry, service=Service(embedder))
    down = [c for c in candidates if c["provenance"]["source"] == "down_voted"]
    assert len(down) == 2 and len({c["id"] for c in down}) == 2, [c["id"] for c in down]
    registry.dispose()


def test_gap_candidates_of_two_runs_on_one_day_get_distinct_ids(settings, monkeypatch):
    """`propose` run twice on one day (after more traffic, or with another --since) ranks different questions first:
    ids made of the date, rank and position repeated, and `accept` refused the second run's reviewed items."""
    settings.ensure_home()

    def report(question, request_id):
        gap = SimpleNamespace(rank=1, name="billing", users=5, request_ids=[request_id], new_page=True,
                              belongs_in=None, documents=[],
                              representatives=[{"question": question, "request_id": request_id, "kind": "refused"}])
        return SimpleNamespace(clusters=[gap])

    ids = []
    for question, request_id in (("where is my invoice?", "r-morning"), ("how do refunds work?", "r-evening")):
        monkeypatch.setattr(growth, "analyse", lambda *a, _r=report(question, request_id), **k: _r)
        [candidate] = growth.propose(settings, timedelta(days=30), NOW, service=Service(None))
        ids.append(candidate["id"])
    assert ids[0] != ids[1]
