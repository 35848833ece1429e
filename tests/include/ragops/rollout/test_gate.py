"""The canary analysis on constructed evidence: each case is a way the old gate decided on noise."""

import json

import numpy as np
import pytest

from ragops.rollout.gate import GatePolicy, Sample, analyze, samples_from_events

PASSED = {"run_id": 1, "regressed": False}


def sample(n_users: int, per_user: int, *, errors: int = 0, latency=20.0, fallbacks: int = 0, offset: int = 0,
           synthetic: bool = False) -> Sample:
    """`n_users` users with `per_user` requests each; the first `errors` requests fail, the next `fallbacks` fall back."""
    n = n_users * per_user
    users = np.repeat(np.arange(n_users) + offset, per_user)
    err = np.zeros(n, dtype=bool)
    err[:errors] = True
    fb = np.zeros(n, dtype=bool)
    fb[errors:errors + fallbacks] = True
    lat = np.full(n, latency, dtype=float) if np.isscalar(latency) else np.asarray(latency, dtype=float)
    return Sample(users, err, fb, lat, np.full(n, synthetic))


def join(*parts: Sample) -> Sample:
    return Sample(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("users", "errors", "fallbacks",
                                                                             "latency_ms", "synthetic")))


def spread(rng, n_users, per_user, rate, offset=0, latency=None):
    """Users whose requests fail independently at `rate`, with log-normal latencies around 25 ms."""
    s = sample(n_users, per_user, offset=offset)
    s.errors = rng.random(len(s)) < rate
    s.latency_ms = latency(len(s)) if latency else 25 * np.exp(rng.normal(0, 0.4, len(s)))
    return s


def test_three_errors_in_fifty_is_not_evidence_enough_to_promote():
    # The old gate promoted this (Fisher p=0.021 > 0.01): 6% against 1% on 50 requests is a likely regression.
    stable = sample(500, 2, errors=10)
    canary = sample(50, 1, errors=3, offset=1000)
    result = analyze(stable, canary, PASSED, GatePolicy(min_requests=30))
    assert result.verdict == "hold"
    json.dumps(result.evidence, allow_nan=False)  # XCom, the registry's JSON column and Slack take no infinities
    assert any(r.startswith("error rate") and "+2.0 points" in r for r in result.reasons), result.reasons


def test_a_promotion_states_what_the_data_ruled_out():
    rng = np.random.default_rng(7)
    stable, canary = spread(rng, 3000, 3, 0.01), spread(rng, 1000, 3, 0.01, offset=10_000)
    result = analyze(stable, canary, PASSED, GatePolicy())
    assert result.verdict == "promote", result.reasons
    error = next(r for r in result.reasons if r.startswith("error rate at most"))
    bound = float(error.split("at most ")[1].split(" points")[0])
    assert 0 < bound < 2.0 and error.endswith("at 95% (allowed +2.0 points)")
    assert result.evidence["metrics"]["error_rate"]["verdict"] == "within"


def test_a_few_ms_of_jitter_on_fast_requests_never_fails_the_latency_check():
    # test_rollout_e2e.py:144 once failed a canary that a busy machine had made 20 ms slower; a few ms of jitter are
    # below the floor (1% of the 1,500 ms p95 objective) and pass, with stable's p95 itself estimated.
    rng = np.random.default_rng(1)
    stable = spread(rng, 2000, 3, 0.0, latency=lambda n: 20 + rng.exponential(4, n))
    canary = spread(rng, 700, 3, 0.0, offset=10_000, latency=lambda n: 25 + rng.exponential(5, n))
    result = analyze(stable, canary, PASSED, GatePolicy())
    assert result.evidence["canary"]["p95_ms"] / result.evidence["stable"]["p95_ms"] > 1.2  # beyond the ratio alone
    assert result.evidence["metrics"]["latency"]["verdict"] == "within"
    assert result.verdict == "promote", result.reasons


def test_equal_latencies_never_roll_back_and_promote():
    rng = np.random.default_rng(4)
    fast = lambda n: 25 * np.exp(rng.normal(0, 0.4, n))  # noqa: E731
    stable, canary = staged(rng, (0.01,) * 3, (0.01,) * 3, per_stage=6000)
    stable.latency_ms, canary.latency_ms = fast(len(stable)), fast(len(canary))
    result = analyze(stable, canary, PASSED, GatePolicy())
    latency = result.evidence["metrics"]["latency"]
    assert latency["verdict"] == "within" and result.verdict == "promote", result.reasons
    assert latency["stable"] == pytest.approx(0.05, abs=0.005)  # stable's own share above its p95, estimated
    assert [t["stratum"] for t in result.evidence["latency_thresholds"]] == [1, 2, 3]


def test_a_fast_service_made_twice_as_slow_is_rolled_back():
    # 25 ms made 50 ms: the old limit (1.2x and +100 ms over stable's p95) passed it 99.5% of the time (issue 20).
    rng = np.random.default_rng(5)
    fast = lambda n: 25 * np.exp(rng.normal(0, 0.4, n))  # noqa: E731
    stable, canary = staged(rng, (0.01,) * 3, (0.01,) * 3, per_stage=2000)
    stable.latency_ms, canary.latency_ms = fast(len(stable)), 2 * fast(len(canary))
    result = analyze(stable, canary, PASSED, GatePolicy())
    assert result.verdict == "rollback" and result.reasons[0].startswith("latency:"), result.reasons
    assert "+15 ms over stable's p95" in result.reasons[0]
    old_floor = analyze(stable, canary, PASSED, GatePolicy(latency_margin_ms=100.0))
    assert old_floor.evidence["metrics"]["latency"]["verdict"] != "worse"  # the constant +100 ms let it through


def test_latencies_tied_at_the_p95_count_in_part():
    # Every stable request at 25 ms (a fixed injected latency, a timer's resolution): stable's share above its p95
    # is 0 and at or above it 100%; ties counted in part keep it at 5%, and a canary far slower still fails.
    stable = sample(1500, 2, latency=25.0)
    assert analyze(stable, sample(400, 2, latency=900.0, offset=5000), PASSED, GatePolicy()).verdict == "rollback"
    close = analyze(stable, sample(400, 2, latency=30.0, offset=5000), PASSED, GatePolicy())
    assert close.evidence["metrics"]["latency"]["stable"] == pytest.approx(0.05) and close.verdict == "promote"


def test_the_latency_floor_comes_from_the_slo(settings):
    assert GatePolicy.from_settings(settings).latency_margin_ms == pytest.approx(0.01 * settings.slo_p95_latency_ms)
    slow_service = settings.model_copy(update={"slo_p95_latency_ms": 4000.0})
    assert GatePolicy.from_settings(slow_service).latency_margin_ms == pytest.approx(40.0)


def test_a_canary_half_again_as_slow_as_a_slow_service_is_rolled_back():
    rng = np.random.default_rng(2)
    slow = lambda n: 400 * np.exp(rng.normal(0, 0.5, n))  # noqa: E731
    stable = spread(rng, 2000, 3, 0.0, latency=slow)
    canary = spread(rng, 500, 3, 0.0, offset=10_000, latency=lambda n: 1.5 * slow(n))
    result = analyze(stable, canary, PASSED, GatePolicy())
    assert result.verdict == "rollback" and result.reasons[0].startswith("latency:")
    assert "of canary requests above their limit" in result.reasons[0]


def test_one_unlucky_heavy_user_cannot_fail_a_stage_alone():
    stable = sample(1000, 3, errors=30)
    fine = sample(300, 3, offset=5000)
    unlucky = sample(1, 40, errors=40, offset=9000)  # one user whose every request fails
    result = analyze(stable, join(fine, unlucky), PASSED, GatePolicy())
    assert result.evidence["canary"]["error_rate"] > 0.04  # request-counted, it looks like a 4-point regression
    assert result.verdict != "rollback", result.reasons
    spread_out = sample(40, 1, errors=40, offset=9000)  # the same 40 errors from 40 different users
    assert analyze(stable, join(fine, spread_out), PASSED, GatePolicy()).verdict == "rollback"


def test_one_heavy_user_cannot_pass_a_stage_alone():
    stable = sample(1000, 3, errors=30)
    heavy = sample(1, 3000, offset=5000)  # 3,000 clean requests from one user
    others = sample(25, 2, offset=6000)
    result = analyze(stable, join(heavy, others), PASSED, GatePolicy())
    assert result.verdict == "hold"
    assert result.evidence["metrics"]["error_rate"]["verdict"] == "unsure"
    many = sample(1500, 2, offset=6000)  # the same volume from many users is evidence
    assert analyze(stable, many, PASSED, GatePolicy()).evidence["metrics"]["error_rate"]["verdict"] == "within"


def test_probe_traffic_is_its_own_stratum():
    # Real users: 10% fallbacks in both variants. Probes (test-set questions, never a fallback) go mostly to the
    # canary here; pooled, the canary would look 5 points better and a real fallback regression would hide.
    real_stable = sample(2000, 2, fallbacks=400)
    real_canary = sample(400, 2, fallbacks=80 + 60, offset=10_000)  # +7.5 points of fallbacks for real users
    probes_canary = sample(400, 1, offset=20_000, synthetic=True)
    probes_stable = sample(400, 1, offset=30_000, synthetic=True)
    policy = GatePolicy()
    stratified = analyze(join(real_stable, probes_stable), join(real_canary, probes_canary), PASSED, policy)
    assert stratified.evidence["metrics"]["fallback_rate"]["difference"] == pytest.approx(0.075 * 400 / 400, abs=0.04)
    assert stratified.evidence["metrics"]["fallback_rate"]["verdict"] != "within"


def test_a_regressed_evaluation_rolls_back_and_a_missing_one_holds():
    rng = np.random.default_rng(3)
    stable, canary = spread(rng, 3000, 3, 0.01), spread(rng, 1000, 3, 0.01, offset=10_000)
    assert analyze(stable, canary, {"run_id": 9, "regressed": True}, GatePolicy()).verdict == "rollback"
    held = analyze(stable, canary, None, GatePolicy())
    assert held.verdict == "hold" and "no evaluation run" in held.reasons[-1]


def test_repeated_looks_at_an_equal_candidate_roll_back_at_most_the_documented_1_percent():
    """600 equal rollouts, each looked at every 15 minutes until the gate decides (up to 40 looks): the bound holds
    over all looks of a rollout, not per look (bench/gate_sim.py: whole rollouts in harder worlds)."""
    rng = np.random.default_rng(11)
    rolled_back = looks = 0
    for _ in range(600):
        users_s, users_c = rng.integers(0, 30_000, 40 * 900), rng.integers(30_000, 33_000, 40 * 100)
        err_s, err_c = rng.random(len(users_s)) < 0.01, rng.random(len(users_c)) < 0.01
        for look in range(1, 41):
            s = Sample(users_s[:look * 900], err_s[:look * 900], np.zeros(look * 900, bool), np.full(look * 900, 25.0))
            c = Sample(users_c[:look * 100], err_c[:look * 100], np.zeros(look * 100, bool), np.full(look * 100, 25.0))
            verdict = analyze(s, c, PASSED, GatePolicy(), detail=False).verdict
            if verdict != "hold":
                break
        rolled_back += verdict == "rollback"
        looks += look
    assert looks > 600 * 5  # the looks are repeated: about 8 per rollout before a promotion
    # GatePolicy.false_rollback is 1%: at most 6 of 600. The count is binomial; were the true rate 2% (the bound this
    # test used to allow), 6 or fewer of 600 would happen with probability 0.044, so the assertion can fail.
    assert rolled_back <= 600 * GatePolicy().false_rollback


def test_events_become_samples_by_user():
    events = [{"variant": "canary", "user_hash": "a", "status": 200, "fallback": None, "latency_ms": 10.0},
              {"variant": "canary", "user_hash": "a", "status": 503, "fallback": "store_unavailable", "latency_ms": 1.0},
              {"variant": "stable", "user_hash": "b", "status": 200, "fallback": "no_results", "latency_ms": 9.0},
              {"variant": "stable", "user_hash": "c", "status": 429, "fallback": "rate_limited", "latency_ms": 0.1,
               "synthetic": True}]
    stable, canary = samples_from_events(events)
    json.dumps(analyze(*samples_from_events([]), None, GatePolicy()).evidence, allow_nan=False)  # no traffic yet
    assert len(canary) == 2 and len(set(canary.users)) == 1 and canary.errors.tolist() == [False, True]
    assert canary.fallbacks.tolist() == [False, False]  # a 5xx counts as an error, not as a fallback
    assert len(stable) == 1 and stable.fallbacks.tolist() == [True]  # 429s are not served requests


STAGES = (10.0, 25.0, 50.0)


def staged(rng, rates_c, rates_s, per_stage=10_000):
    """A rollout through 10, 25 and 50%: sticky users with 2 requests per stage; stratum = the share in force."""
    parts_s, parts_c = [], []
    for k, (share, rc, rs) in enumerate(zip(STAGES, rates_c, rates_s)):
        n_c = int(per_stage * share / 100) // 2
        n_s = per_stage // 2 - n_c
        c, s = spread(rng, n_c, 2, rc), spread(rng, n_s, 2, rs, offset=100_000)
        c.stratum, s.stratum = np.full(len(c), k), np.full(len(s), k)
        parts_c.append(c)
        parts_s.append(s)
    return join_staged(*parts_s), join_staged(*parts_c)


def join_staged(*parts: Sample) -> Sample:
    joined = join(*parts)
    joined.stratum = np.concatenate([p.stratum for p in parts])
    return joined


def test_an_incident_shared_by_both_variants_does_not_roll_back_an_equal_candidate():
    # +5 points of errors for everyone during the 50% stage: pooled over the rollout, half of the canary's requests
    # fall in the incident and a fifth of stable's, so the canary looks 1.5 points worse (Simpson's paradox).
    stable, canary = staged(np.random.default_rng(20), (0.01, 0.01, 0.06), (0.01, 0.01, 0.06))
    assert canary.errors.mean() - stable.errors.mean() > 0.015
    result = analyze(stable, canary, PASSED, GatePolicy())
    assert result.verdict != "rollback", result.reasons
    assert abs(result.evidence["metrics"]["error_rate"]["difference"]) < 0.01


def test_a_real_regression_is_still_caught_stage_by_stage():
    stable, canary = staged(np.random.default_rng(21), (0.05, 0.05, 0.05), (0.01, 0.01, 0.01))
    result = analyze(stable, canary, PASSED, GatePolicy())
    assert result.verdict == "rollback" and result.reasons[0].startswith("error rate"), result.reasons
    stable, canary = staged(np.random.default_rng(22), (0.04, 0.04, 0.04), (0.01, 0.01, 0.01), per_stage=4000)
    assert analyze(stable, canary, PASSED, GatePolicy()).verdict == "rollback"


def test_a_user_in_several_stages_counts_once():
    # The same 30 users in every stage, each failing in every stage: across strata they are 30 users, not 90.
    stable = spread(np.random.default_rng(25), 3000, 3, 0.01)
    stable.stratum = np.repeat(np.arange(3), 3000)
    fine = sample(600, 3, offset=5000)
    fine.stratum = np.repeat(np.arange(3), 600)
    unlucky = sample(3, 30, errors=90, offset=9000)  # 3 users whose every request fails, 10 in each stage
    unlucky.stratum = np.tile(np.repeat(np.arange(3), 10), 3)
    result = analyze(stable, join_staged(fine, unlucky), PASSED, GatePolicy())
    assert result.verdict != "rollback", result.reasons


def test_a_regression_confined_to_the_lightest_users_is_caught():
    # 10% of canary users send one request each and get +20 points of errors: +0.2 points per request, +2 per user.
    rng = np.random.default_rng(23)
    stable = join(spread(rng, 7200, 10, 0.01), spread(rng, 800, 1, 0.01, offset=50_000))
    canary = join(spread(rng, 1800, 10, 0.01, offset=100_000), spread(rng, 200, 1, 0.21, offset=150_000))
    result = analyze(stable, canary, PASSED, GatePolicy())
    assert result.evidence["metrics"]["error_rate"]["verdict"] != "worse"  # per request it hides
    assert result.verdict == "rollback", result.reasons
    assert any(r.startswith("error rate per user") for r in result.reasons), result.reasons


def test_probes_alone_never_promote():
    # 5 real canary users at +6 points of errors (one failure in 15 requests), and 1,000 unaffected probes a side.
    rng = np.random.default_rng(24)
    stable = join(spread(rng, 3000, 3, 0.01), sample(1000, 1, offset=50_000, synthetic=True))
    canary = join(sample(5, 3, errors=1, offset=100_000),
                  sample(1000, 1, offset=150_000, synthetic=True))
    result = analyze(stable, canary, PASSED, GatePolicy())
    assert result.verdict != "promote", result.reasons
    assert any("only 5 canary users" in r for r in result.reasons), result.reasons
    assert result.evidence["canary"]["users"] == 5 and result.evidence["canary"]["probes"] == 1000


def test_probe_users_are_one_per_question_and_side():
    """Probe users are users the probe key fronts: they land where the router puts that key and user id."""
    from ragops.rollout.probe import probe_user
    from ragops.releases import bucket, routing_key

    def routed(user):
        return bucket(routing_key("key:ragops-probe", user))

    a, b = probe_user("What is a canary?", 10, True), probe_user("What is a canary?", 10, True)
    assert a == b and routed(a) < 10 * 100
    assert probe_user("What is a canary?", 10, False) != a and routed(probe_user("What is a canary?", 10, False)) >= 1000
    assert probe_user("Another question?", 10, True) != a
    other = probe_user("What is a canary?", 10, True, key="other-probe")  # RAGOPS_PROBE_KEY may name another key
    assert bucket(routing_key("key:other-probe", other)) < 10 * 100


def test_anonymous_events_count_as_the_policy_says():
    """Verified callers always count; anonymous ones not at all by default, or one user per address, capped."""
    def event(user, verified, fallback=None):
        return {"variant": "canary", "user_hash": user, "status": 200, "fallback": fallback, "latency_ms": 10.0,
                "verified": verified}

    events = [event("key-user", True)] + [event("addr-a", False, "no_results") for _ in range(40)] + [
        event("addr-b", False) for _ in range(2)]
    _, canary = samples_from_events(events)
    assert len(canary) == 1 and not canary.fallbacks.any()  # exclude: the 42 anonymous requests weigh nothing
    _, capped = samples_from_events(events, "address", per_address=5)
    assert len(capped) == 1 + 5 + 2 and len(set(capped.users)) == 3  # each address one user, its first 5 requests
    assert capped.fallbacks.sum() == 5
    with pytest.raises(ValueError, match="exclude or address"):
        samples_from_events(events, "everyone")


def test_a_client_that_left_mid_stream_or_a_refused_request_is_not_a_served_sample():
    """Attacked after landing (issue 25): a 499 (the client closed the stream) is not an error, and its latency is
    when the client left, not how long the answer took: counted, a slow canary whose users give up looked fast."""
    def event(status, latency_ms, fallback=None):
        return {"variant": "canary", "user_hash": "a", "status": status, "fallback": fallback,
                "latency_ms": latency_ms}

    events = [event(200, 900.0), event(499, 5.0), event(499, 7.0), event(503, 20.0, "llm_unavailable")]
    _, canary = samples_from_events(events)
    assert len(canary) == 2 and canary.latency_ms.tolist() == [900.0, 20.0]
    assert canary.errors.tolist() == [False, True]
    # a request refused before routing (422, 404 model_not_found, 400 conversation_too_long) was recorded as
    # variant stable: a key that floods them made stable look fast and error-free beside the canary
    refused = [event(200, 800.0) | {"variant": "stable"}] + [
        event(status, 1.0) | {"variant": "stable"} for status in (400, 401, 404, 413, 422)]
    stable, _ = samples_from_events(refused)
    assert stable.latency_ms.tolist() == [800.0]


def heavy_tailed(rng, n_users: int, offset: int, slower: float, per_user: int = 20) -> Sample:
    """An 800 ms service whose users each have their own latency multiplier (log-normal, sigma 0.5), and 5% of
    requests a Pareto tail (alpha 1.5): bench/gate_world.py's heavy tails."""
    users = np.repeat(np.arange(n_users) + offset, per_user)
    latency = 800 * np.exp(rng.normal(0, 0.5, len(users))) * rng.lognormal(0, 0.5, n_users)[users - offset]
    latency *= np.where(rng.random(len(users)) < 0.05, 1 + rng.pareto(1.5, len(users)), 1.0) * slower
    return Sample(users, rng.random(len(users)) < 0.01, np.zeros(len(users), bool), latency)


def test_half_again_as_slow_with_heavy_tails_is_rolled_back_on_typical_latency():
    # The p95 comparison alone is noisy here: a canary of a few hundred users is slow or fast by their own luck.
    rng = np.random.default_rng(0)  # 11 of seeds 0-11 fail the typical latency test, 9 the p95 test
    stable, canary = heavy_tailed(rng, 1350, 0, 1.0), heavy_tailed(rng, 300, 10_000, 1.5)
    result = analyze(stable, canary, PASSED, GatePolicy())
    assert result.evidence["metrics"]["latency"]["verdict"] != "worse"  # the p95 test does not see it
    assert result.verdict == "rollback", result.reasons
    typical = next(r for r in result.reasons if r.startswith("typical latency"))
    assert "limit 1.20x" in typical and "stable's median" in typical
    json.dumps(result.evidence, allow_nan=False)


def test_equal_heavy_tails_are_not_rolled_back_on_typical_latency():
    rng = np.random.default_rng(100)
    for _ in range(40):
        stable, canary = heavy_tailed(rng, 1350, 0, 1.0), heavy_tailed(rng, 300, 10_000, 1.0)
        result = analyze(stable, canary, PASSED, GatePolicy(), detail=False)
        assert result.evidence["metrics"]["latency_typical"]["verdict"] != "worse", result.reasons


def test_typical_latency_keeps_the_floor_of_a_fast_service():
    # 5 ms more on a 25 ms service is +20% at the median, below the floor (+15 ms), so it cannot fail the test
    rng = np.random.default_rng(3)
    stable = spread(rng, 2000, 3, 0.0)
    canary = spread(rng, 700, 3, 0.0, offset=10_000, latency=lambda n: 30 * np.exp(rng.normal(0, 0.4, n)))
    typical = analyze(stable, canary, PASSED, GatePolicy()).evidence["metrics"]["latency_typical"]
    assert typical["verdict"] == "within" and np.exp(typical["allowed"]) == pytest.approx(1 + 15 / 25, rel=0.05)
