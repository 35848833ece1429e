"""Issue 23, part 2, through the real app: scripted traffic asks real questions of the indexed corpus (answered ones
about it, refused ones about topics it lacks), users down-vote some answers, and the drift check, the RAG Ops alert
metric and the Slack outbox are read back. A steady mix raises nothing; more refusals fire the alert.

Each phase's events get timestamps spread evenly over their window after the app stored them (deterministic, no
sleeps); the votes go through `POST /v1/feedback`, as the asking user.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from support import samples
from ragops.answer.pipeline import AnswerService
from ragops.audit.apikeys import issue
from ragops.monitoring import drift
from ragops.registry import Registry
from ragops.registry.models import RequestEvent

ANSWERABLE = ["What blocks a mass delete?", "How do I start the platform on one machine?",
              "Where do reports go when no token is set?", "How often does the MCP permission audit run?",
              "What happens to documents that fail validation?"]
MISSING = ["How do I bake sourdough bread at home?", "What is the best pizza dough hydration?",
           "Which vaccines does a puppy need?"]  # a topic the corpus lacks
OPEN = {"rate_limit": "100000/minute", "rate_limit_address": "100000/minute", "rate_limit_global": "100000/minute"}
T0 = datetime(2026, 11, 2, tzinfo=timezone.utc)
USERS = 30


@pytest.fixture
def platform(indexed, embedder, tmp_path):
    """(settings, client, desk key): the real app over the indexed corpus, behind a support desk's API key that fronts
    its end users (their `user_id`s are the users the drift test clusters by)."""
    from serving.app import create_app

    keys = tmp_path / "keys.yaml"
    desk, _ = issue(keys, "support-desk")
    cfg = indexed.model_copy(update=OPEN | {"api_keys": keys})
    with TestClient(create_app(cfg, service=AnswerService(cfg, embedder=embedder))) as client:
        yield cfg, client, desk


def phase(client, desk, registry, start: datetime, n: int, refused: float, down: float, seed: int) -> dict:
    """`n` questions from USERS users over the day from `start`, a `refused` share about the missing topic, `down` of
    the answers down-voted (a quarter of the votes with a reported citation click). Returns the fallbacks seen."""
    rng = np.random.default_rng(seed)
    asked, seen = [], {}
    for i in range(n):
        missing = rng.random() < refused
        question = (MISSING if missing else ANSWERABLE)[int(rng.integers(3 if missing else 5))]
        user = f"end-user-{rng.integers(USERS)}"
        reply = client.post("/v1/ask", json={"question": question, "user_id": user}, headers={"X-API-Key": desk})
        assert reply.status_code == 200, reply.text
        body = reply.json()
        seen[question] = body["fallback"]
        asked.append((body["request_id"], user, body["fallback"], rng.random() < 0.4, rng.random() < down))
    assert client.app.state.events.flush()
    step = timedelta(days=1) / n
    with registry.session() as s:
        for i, (rid, *_) in enumerate(asked):
            s.execute(update(RequestEvent).where(RequestEvent.request_id == rid).values(ts=start + i * step))
    for i, (rid, user, fallback, votes, is_down) in enumerate(asked):
        if votes and fallback is None:
            vote = {"request_id": rid, "user_id": user, "rating": "down" if is_down else "up"}
            if i % 2 == 0:
                vote["cited_followed"] = i % 4 == 0
            reply = client.post("/v1/feedback", json=vote, headers={"X-API-Key": desk})
            assert reply.status_code == 200, reply.text
    return seen


def outbox(cfg) -> list[dict]:
    path = cfg.outbox_path
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_steady_mix_is_quiet_and_more_refusals_fire_the_alert(platform):
    cfg, client, desk = platform
    registry = Registry(cfg.registry_url)
    seen = {}
    for day in range(4):  # the accepted baseline: the release's first days, 10% refused, 10% of votes down
        seen |= phase(client, desk, registry, T0 + timedelta(days=day), 120, 0.10, 0.10, seed=day)
    assert {q: seen[q] for q in ANSWERABLE} == dict.fromkeys(ANSWERABLE, None)  # the real pipeline answers these
    assert {q: seen[q] for q in MISSING} == dict.fromkeys(MISSING, "no_results")  # ... and refuses these

    steady_end = T0 + timedelta(days=9)
    phase(client, desk, registry, steady_end - timedelta(days=1), 200, 0.10, 0.10, seed=10)
    for hour in (0, 1):
        result = drift.check(cfg, end=steady_end + timedelta(hours=hour), registry=registry)
        assert result["shifted"] == [] and result["alerts"] == []
    assert {r["verdict"] for r in result["signals"]} <= {"steady", "too_little"}
    assert outbox(cfg) == []

    shifted_end = steady_end + timedelta(days=1)
    phase(client, desk, registry, shifted_end - timedelta(days=1), 200, 0.45, 0.10, seed=11)
    first = drift.check(cfg, end=shifted_end, registry=registry)
    assert first["alerts"] == [] and outbox(cfg) == []  # crossed once: not yet sustained
    second = drift.check(cfg, end=shifted_end + timedelta(hours=1), registry=registry)
    assert "refusal_rate:live:stable" in second["shifted"]
    (message,) = [m for m in outbox(cfg) if m["kind"] == "alert"]
    assert "Quality drift: refusal rate of release live (stable)" in message["text"]
    assert "in the baseline (2026-11-02 00:00 to 2026-11-09 00:00 UTC" in message["text"]  # the accepted window
    assert "points" in message["text"] and "Shifted since 2026-11-11 00:00 UTC" in message["text"]

    client.app.state.status.refresh()
    metrics = samples(client.get("/metrics").text)
    key = (("release", "live"), ("signal", "refusal_rate"), ("variant", "stable"))
    assert metrics[("ragops_quality_shift", key)] == 1
    assert metrics[("ragops_quality_shift_size", key)] > 0.2
    assert metrics[("ragops_quality_shift_since_timestamp_seconds", key)] == shifted_end.timestamp() - 86400
    assert metrics[("ragops_quality_signal", key[:2] + (("variant", "stable"), ("window", "baseline")))] < 0.2
    down = (("release", "live"), ("signal", "downvote_share"), ("variant", "stable"))
    assert metrics[("ragops_quality_shift", down)] == 0
    assert metrics[("ragops_quality_signal", down + (("window", "baseline"),))] == pytest.approx(0.10, abs=0.06)
