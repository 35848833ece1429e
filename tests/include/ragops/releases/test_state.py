from ragops.registry import Registry
from ragops.registry.models import Release, RolloutState
from ragops.releases import Rollout, ReleaseInfo, bucket, current_rollout, ensure_default_release

STABLE = ReleaseInfo(1, "stable", 1, {})
CANARY = ReleaseInfo(2, "candidate", 2, {"k": 8})


def test_assignment_is_sticky_and_matches_the_share():
    rollout = Rollout(STABLE, CANARY, 10.0, "running")
    users = [f"user-{i}" for i in range(20_000)]
    first = [rollout.variant_for(u)[0] for u in users]
    assert first == [rollout.variant_for(u)[0] for u in users]
    share = first.count("canary") / len(users)
    assert 0.09 < share < 0.11
    wider = Rollout(STABLE, CANARY, 25.0, "running")
    assert all(wider.variant_for(u)[0] == "canary" for u, v in zip(users, first) if v == "canary")  # growing keeps users


def test_no_canary_unless_running():
    for status in ("paused", "rolled_back", "idle"):
        assert Rollout(STABLE, CANARY, 50.0, status).variant_for("u")[0] == "stable"
    assert Rollout(STABLE, None, 50.0, "running").variant_for("u") == ("stable", STABLE)


def test_bucket_is_stable_across_processes():
    assert bucket("alice") == bucket("alice") and 0 <= bucket("alice") < 10_000
    assert bucket("alice") == int.from_bytes(__import__("hashlib").sha256(b"alice").digest()[:8], "big") % 10_000


def test_state_round_trip(tmp_path):
    registry = Registry(f"sqlite:///{tmp_path / 'r.sqlite'}")
    live = ensure_default_release(registry)
    assert ensure_default_release(registry) == live
    rollout = current_rollout(registry)
    assert rollout.stable.name == "live" and rollout.candidate is None
    with registry.session() as s:
        candidate = Release(name="cand-1", index_version_id=None, answer_config={"k": 3})
        s.add(candidate)
        s.flush()
        state = s.get(RolloutState, 1)
        state.candidate_release_id, state.candidate_percent, state.status = candidate.id, 10.0, "running"
    rollout = current_rollout(registry)
    assert rollout.candidate.name == "cand-1" and rollout.percent == 10.0 and rollout.status == "running"


def test_replicas_starting_together_both_get_the_default_release(postgres_url):
    """Two serving replicas on a fresh registry: the one that loses the insert race reads the winner's rows."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import text

    waiting = text("SELECT count(*) FROM pg_stat_activity "
                   "WHERE datname = current_database() AND wait_event_type = 'Lock'")
    winner, loser = Registry(postgres_url), Registry(postgres_url)
    with ThreadPoolExecutor(1) as pool:
        with winner.session() as s:  # the winner has inserted the default release, not yet committed
            s.add(Release(name="live", index_version_id=None, answer_config={}, created_by="replica-1"))
            s.flush()
            second = pool.submit(ensure_default_release, loser)
            deadline = time.monotonic() + 30
            with winner.engine.connect() as c:  # until the loser's insert waits on the winner's row
                while not c.execute(waiting).scalar_one():
                    assert time.monotonic() < deadline and not second.done(), "the second replica never waited"
                    time.sleep(0.05)
        result = second.result(timeout=30)  # before the fix: the unique violation on releases.name
    assert result.name == "live" and current_rollout(loser).stable.id == result.id
    winner.dispose()
    loser.dispose()
