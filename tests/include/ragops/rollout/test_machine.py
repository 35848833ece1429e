"""The rollout state machine without traffic or a model: what the gate reads from the registry."""

import json
from datetime import datetime, timedelta, timezone

from ragops.evaluation.testset import load_testset
from ragops.registry import Registry
from ragops.registry.models import EvalRun, RequestEvent, RolloutState
from ragops.releases import create_release
from ragops.rollout.machine import Rollout
from ragops.rollout.traffic import current_low_traffic


def _run(release: str, testset_hash: str, status: str) -> EvalRun:
    return EvalRun(testset="t.jsonl", testset_hash=testset_hash, release=release, variant="candidate",
                   embedding_model="m", generator="g", n=12, metrics={"hit_rate": 1.0},
                   comparison={"baseline_run_id": None}, status=status, duration_s=1.0)


def test_the_gate_reads_the_candidates_run_on_the_current_test_set(settings):
    """A newer run on another test set (an old or ad hoc one) does not stand for the candidate's evaluation."""
    registry = Registry(settings.registry_url)
    rollout = Rollout(settings, registry)
    create_release(registry, "cand", None, {}, "test")
    rollout.start("cand", "test")
    with registry.session() as s:
        current = _run("cand", load_testset(settings.eval_testset).sha256, "ok")
        s.add(current)
        s.flush()
        current_id = current.id
        s.add(_run("cand", "0" * 64, "regressed"))  # newer, on another test set
    decision = rollout.step()
    assert decision.decision != "rollback"
    assert decision.evidence["evaluation"]["run_id"] == current_id


def test_a_run_only_on_another_test_set_is_no_evaluation(settings):
    registry = Registry(settings.registry_url)
    rollout = Rollout(settings, registry)
    create_release(registry, "cand", None, {}, "test")
    rollout.start("cand", "test")
    with registry.session() as s:
        s.add(_run("cand", "0" * 64, "ok"))
    decision = rollout.step()
    assert decision.decision == "hold" and decision.evidence["evaluation"] is None


def _served(registry, users: list[str], variant: str, start: datetime, per_user: int = 3) -> None:
    """`per_user` fine requests of each user (callers with an API key, whom the gate counts), a minute apart."""
    with registry.session() as s:
        s.add_all(RequestEvent(ts=start + timedelta(minutes=i * per_user + j), request_id=f"{u}-{j}", endpoint="ask",
                               user_hash=u, variant=variant, latency_ms=25.0, status=200, verified=True)
                  for i, u in enumerate(users) for j in range(per_user))


def _running(settings, canary: int, stable: int):
    """(registry, rollout, t0): a rollout of "cand" begun 5 days ago, with a passed evaluation on the current test set,
    and `canary` and `stable` users who each sent `_served`'s requests at t0."""
    registry = Registry(settings.registry_url)
    rollout = Rollout(settings, registry)
    create_release(registry, "cand", None, {}, "test")
    rollout.start("cand", "test")
    t0 = datetime.now(timezone.utc) - timedelta(days=5)
    with registry.session() as s:
        state = s.get(RolloutState, 1)
        state.started_at = state.stage_started_at = t0
        s.add(_run("cand", load_testset(settings.eval_testset).sha256, "ok"))
    _served(registry, [f"c{i}" for i in range(canary)], "canary", t0)
    _served(registry, [f"s{i}" for i in range(stable)], "stable", t0)
    return registry, rollout, t0


def test_100_users_in_all_at_10_percent_do_not_hang_silently(settings):
    """min_users 20 at a 10% share of 100 users: 10 canary users, whose arrivals stop after the first hour."""
    registry, rollout, t0 = _running(settings, canary=10, stable=90)  # no Slack token: messages land in the outbox

    early = rollout.step(now=t0 + timedelta(hours=2))  # 10 users in 2 hours: on course for 120 by the horizon
    assert early.decision == "hold" and early.evidence["low_traffic"] is None

    raised = rollout.step(now=t0 + timedelta(hours=24, minutes=15))  # none came since: out of reach at 10%
    assert raised.decision == "raise" and (raised.from_percent, raised.to_percent) == (10.0, 25.0)
    assert raised.evidence["low_traffic"]["action"] == "raise_share" and "rises to 25%" in raised.reason
    assert rollout.status()["percent"] == 25.0 and rollout.status()["stage"] == 0  # the stage's normal step is next
    assert current_low_traffic(registry)["release"] == "cand"

    asked = rollout.step(now=t0 + timedelta(hours=24 + 48, minutes=30))  # still 10, at the bound, past 2x the horizon
    assert asked.decision == "hold" and asked.evidence["low_traffic"]["action"] == "ask_a_person"
    assert "needs a person" in asked.reason and rollout.status()["percent"] == 25.0
    sent = [json.loads(line) for line in settings.outbox_path.read_text().splitlines()]
    assert "needs a person" in json.dumps(sent[-1]) and sent[-1]["kind"] == "alert"

    _served(registry, [f"c{i}" for i in range(10, 25)], "canary", t0 + timedelta(hours=73))  # the 25% share's users
    met = rollout.step(now=t0 + timedelta(hours=75))
    assert met.evidence["counted"]["users"] == 25
    # the minimum is met, so users no longer hold it; what does is slow evidence (a few requests from 25 users leave
    # metrics unsure), and past the raised share's horizon that still needs a person, now named as such
    low = met.evidence["low_traffic"]
    assert low["short"] == "evidence" and low["action"] == "ask_a_person" and low["unsure"]
    assert "slow evidence" in met.reason and current_low_traffic(registry)["short"] == "evidence"


def test_slow_evidence_raises_the_share_and_the_next_stage_waits_for_it(settings):
    """30 canary users with 3 requests each meet the minimum but cannot rule out +2 points of errors: after a quarter
    of the horizon the gate raises the share instead of holding at 10% for days, and says why."""
    registry, rollout, t0 = _running(settings, canary=30, stable=270)

    early = rollout.step(now=t0 + timedelta(hours=5))  # unsure, but too early to call it slow
    assert early.decision == "hold" and early.evidence["low_traffic"] is None and early.evidence["counted"]["users"] == 30
    raised = rollout.step(now=t0 + timedelta(hours=6, minutes=15))
    low = raised.evidence["low_traffic"]
    assert raised.decision == "raise" and (raised.from_percent, raised.to_percent) == (10.0, 25.0)
    assert low["short"] == "evidence" and "error_rate" in low["unsure"] and "slow evidence" in raised.reason
    assert rollout.status()["percent"] == 25.0 and rollout.status()["stage"] == 0
    held = rollout.step(now=t0 + timedelta(hours=7))  # at the bound, within the new horizon: an ordinary hold
    assert held.decision == "hold" and held.evidence["low_traffic"] is None and rollout.status()["percent"] == 25.0


def test_slow_evidence_never_raises_the_share_of_a_candidate_without_an_evaluation(settings):
    registry, rollout, t0 = _running(settings, canary=30, stable=270)
    with registry.session() as s:
        s.query(EvalRun).delete()
    held = rollout.step(now=t0 + timedelta(hours=6, minutes=15))
    assert held.decision == "hold" and held.evidence["low_traffic"] is None and rollout.status()["percent"] == 10.0
    assert "no evaluation run yet" in held.reason
