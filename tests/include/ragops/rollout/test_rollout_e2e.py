"""Staged rollouts end to end: simulated users through the real app, the gate on their request events.

Latency is injected, never measured: the service under test reports a fixed latency per variant, so a busy machine
cannot slow the canary into a rollback (or hide a slow one). Errors come from a release whose collection is missing.
"""

import shutil
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from ragops.answer.pipeline import AnswerService
from ragops.ingest.refresh import Refresher
from ragops.registry.models import IndexVersion, RolloutDecision
from ragops.releases import create_release
from ragops.rollout.machine import Rollout, RolloutError
from ragops.rollout.probe import canary_users
from ragops.rollout.reindex import reindex

DOCS = Path(__file__).resolve().parents[4] / "docs"
LENIENT = {"rollout_min_window_minutes": 0.0, "rollout_min_requests": 30, "rollout_min_users": 20,
           "rollout_error_mde": 0.3, "rollout_fallback_mde": 0.3, "rollout_false_promotion": 0.3,
           "rate_limit": "100000/minute", "rate_limit_address": "100000/minute",
           "rate_limit_global": "100000/minute"}


class InjectedLatency(AnswerService):
    """The real pipeline, reporting the latency the test sets per variant instead of the machine's."""

    latency_ms = {"stable": 25.0, "canary": 25.0}

    async def ask(self, *args, **kwargs):
        result = await super().ask(*args, **kwargs)
        result.latency_ms = self.latency_ms[result.variant]
        return result


@pytest.fixture
def platform(settings, embedder, tmp_path):
    """A copy of the docs corpus indexed, and the real app routing users. Users come through the API key of a
    support desk that fronts them (the gate counts only verified callers by default); the client sends that key."""
    from fastapi.testclient import TestClient

    from ragops.audit.apikeys import issue
    from serving.app import create_app

    corpus = tmp_path / "docs"
    shutil.copytree(DOCS, corpus)
    desk, _ = issue(tmp_path / "keys.yaml", "support-desk")
    probe, _ = issue(tmp_path / "keys.yaml", "ragops-probe")
    cfg = settings.model_copy(update={"source": corpus.as_uri(), "api_keys": tmp_path / "keys.yaml",
                                      "probe_api_key": SecretStr(probe)} | LENIENT)
    Refresher(cfg, embedder=embedder).run()
    service = InjectedLatency(cfg, embedder=embedder, rollout_ttl_s=0)  # the router re-reads the state every request
    service.latency_ms = {"stable": 25.0, "canary": 25.0}
    client = TestClient(create_app(cfg, service=service), headers={"X-API-Key": desk})
    client.__enter__()
    yield cfg, client, service
    client.__exit__(None, None, None)


def good_candidate(cfg, service):
    return reindex(cfg, actor="test", embedder=service.embedder, service=service)["release"]


def traffic(client, percent, canary=110, stable=30, background=2000):
    """Users in the canary share and outside it ask real questions; returns the variants they were served.

    `background` more stable users are written as request events directly (25 ms, no error): at a 10% share stable
    serves nine times the canary's users, and the gate counts the uncertainty of stable's own p95, which 30 requests
    cannot pin down. Asking them through the app would only make the test slower."""
    from ragops.registry.models import RequestEvent

    with client.app.state.service.registry.session() as s:
        s.add_all(RequestEvent(request_id=f"bg-{percent}-{i}", endpoint="ask", user_hash=f"bg-{percent}-{i}",
                               variant="stable", latency_ms=25.0, status=200, verified=True)
                   for i in range(background))
    seen = {}
    users = (canary_users(percent, canary, prefix=f"c{percent}", key="support-desk")
             + [f"s{percent}-{i}" for i in range(stable)])
    for user in users:
        reply = client.post("/v1/ask", json={"question": "What happens when a refresh would delete many documents?",
                                              "user_id": user})
        seen[user] = reply.json()["variant"] if reply.status_code != 503 else "canary-error"
    client.app.state.events.flush()
    return seen



def decisions(cfg):
    from ragops.registry import Registry

    with Registry(cfg.registry_url).session() as s:
        return [(d.decision, d.to_percent) for d in s.scalars(select(RolloutDecision).order_by(RolloutDecision.id))]


def test_a_good_candidate_climbs_to_100_and_becomes_stable(platform):
    cfg, client, service = platform
    name = good_candidate(cfg, service)
    machine = Rollout(cfg, embedder=service.embedder)
    machine.start(name, "test")
    for percent in (10, 25, 50):
        served = traffic(client, percent)
        assert list(served.values()).count("canary") >= 110  # sticky hashing put the canary users on the canary
        decision = machine.step()
        assert decision.decision in ("promote", "complete"), decision.reason
        assert "error rate at most" in decision.reason and "at 70%" in decision.reason  # what the data ruled out
    assert [d for d, _ in decisions(cfg)] == ["start", "promote", "promote", "complete"]
    status = machine.status()
    assert status["stable"] == name and status["candidate"] is None and status["status"] == "promoted"
    with service.registry.session() as s:
        live = s.scalars(select(IndexVersion).where(IndexVersion.status == "live")).one()
    assert live.collection.startswith("chunks_")  # refreshes now write to the promoted collection
    after = client.post("/v1/ask", json={"question": "What does refresh_conflict mean?", "user_id": "anyone"}).json()
    assert after["release"] == name and after["variant"] == "stable"
    report = Refresher(cfg, embedder=service.embedder).run()
    assert report.documents["changed"] == 0 and report.documents["added"] == 0  # the manifest came along: nothing re-read


def test_a_failing_candidate_is_rolled_back_at_10_percent_with_evidence(platform):
    cfg, client, service = platform
    with service.registry.session() as s:
        broken = IndexVersion(store="lance", collection="missing_collection", store_version=1,
                              embedding_model=cfg.embedding_model, n_documents=1, n_chunks=1, status="candidate")
        s.add(broken)
        s.flush()
        version_id = broken.id
    create_release(service.registry, "broken", version_id, {}, "test")
    machine = Rollout(cfg)
    machine.start("broken", "test")
    served = traffic(client, 10)
    assert list(served.values()).count("canary-error") >= 110  # canary users got 503 store_unavailable
    decision = machine.step()
    assert decision.decision == "rollback" and decision.to_percent == 0
    assert decision.reason.startswith("error rate") and "at least" in decision.reason
    assert decision.evidence["canary"]["errors"] >= 110 and decision.evidence["metrics"]["error_rate"]["at_least"] > 0.3
    assert machine.status()["status"] == "rolled_back" and decisions(cfg)[-1] == ("rollback", 0.0)
    again = traffic(client, 10, canary=5, stable=0)
    assert set(again.values()) == {"stable"}  # the router followed the rollback


def test_a_slow_candidate_is_rolled_back_and_a_jittery_one_is_not(platform):
    cfg, client, service = platform
    name = good_candidate(cfg, service)
    machine = Rollout(cfg)
    machine.start(name, "test")
    service.latency_ms = {"stable": 25.0, "canary": 30.0}  # 5 ms slower: below the SLO's floor (15 ms), jitter
    traffic(client, 10)
    jitter = machine.step()
    assert jitter.decision == "promote", jitter.reason
    assert jitter.evidence["metrics"]["latency"]["verdict"] == "within"
    service.latency_ms = {"stable": 25.0, "canary": 900.0}  # far beyond 1.2x and +15 ms
    traffic(client, 25)
    slow = machine.step()
    assert slow.decision == "rollback" and slow.reason.startswith("latency:"), slow.reason


def test_low_traffic_holds_and_probes_alone_never_promote(platform):
    cfg, client, service = platform
    machine = Rollout(cfg)
    machine.start(good_candidate(cfg, service), "test")
    traffic(client, 10, canary=5, stable=20)
    decision = machine.step()
    assert decision.decision == "hold" and decision.evidence["needs_traffic"]
    assert any("canary requests so far" in r for r in decision.reason.split("; ")), decision.reason
    assert machine.status()["percent"] == 10
    from ragops.rollout.probe import send_probes

    probe_key = cfg.probe_api_key.get_secret_value()  # test-set questions to each variant, one user per question
    sent = send_probes("", 10, 110, probe_key, client=client)
    assert sent == {"sent": 220, "statuses": {200: 220}}
    client.app.state.events.flush()
    held = machine.step()
    assert held.decision == "hold" and "probe requests do not count" in held.reason, held.reason
    traffic(client, 10, canary=60)  # real users arrive: 60 of them, the first 5 again (latency needs more than 30)
    promoted = machine.step()
    assert promoted.decision == "promote", promoted.reason
    assert promoted.evidence["canary"]["probes"] == 110 and machine.status()["percent"] == 25


def test_manual_rollback_at_any_stage_and_after_completion_rereads_only_what_changed(platform):
    cfg, client, service = platform
    name = good_candidate(cfg, service)
    machine = Rollout(cfg, embedder=service.embedder)
    machine.start(name, "test")
    traffic(client, 10)
    assert machine.step().decision == "promote"
    machine.pause("ops")
    with pytest.raises(RolloutError, match="cannot pause"):
        machine.pause("ops")
    rolled = machine.rollback("ops", "customer complaint")
    assert rolled.from_percent == 25 and rolled.to_percent == 0 and "customer complaint" in rolled.reason

    with service.registry.session() as s:
        from ragops.registry.models import RolloutState

        s.get(RolloutState, 1).status = "idle"
    machine.start(name, "test")
    for percent in (10, 25, 50):
        traffic(client, percent)
        machine.step()
    assert machine.status()["stable"] == name
    page = Path(cfg.source.removeprefix("file://")) / "serving.md"
    page.write_text(page.read_text() + "\n\n## Changed after the promotion\n\nThe quokka paragraph was added later.\n")
    assert Refresher(cfg, embedder=service.embedder).run().documents["changed"] == 1  # into the promoted collection
    undone = machine.rollback("ops", "bad week")
    assert undone.decision == "rollback" and machine.status()["stable"] == "live"
    switch = undone.evidence["switch"]
    assert switch["collection"] == "chunks" and switch["catch_up_error"] is None
    assert switch["caught_up"]["changed"] == 1 and switch["caught_up"]["added"] == 0  # one document re-read, not all
    assert switch["caught_up"]["unchanged"] >= 10
    with service.registry.session() as s:
        live = s.scalars(select(IndexVersion).where(IndexVersion.status == "live")).one()
    assert live.collection == "chunks"  # the collection from before the promotion is live again
    reply = client.post("/v1/ask", json={"question": "What is the quokka paragraph?", "user_id": "x"}).json()
    assert reply["release"] == "live" and reply["fallback"] is None
    assert "Changed after the promotion" in str(reply["citations"]) or "quokka" in reply["answer"]
