from ragops.rollout.gate import GatePolicy, analyze, worse_p_value


def ev(status=200, latency=20.0, fallback=None, variant="stable"):
    return {"status": status, "latency_ms": latency, "fallback": fallback, "variant": variant, "error": None,
            "ts": None, "endpoint": "/v1/ask"}


def test_p_value_of_a_clear_and_of_a_tiny_difference():
    assert worse_p_value(20, 100, 1, 900) < 1e-6
    assert abs(worse_p_value(1, 5, 0, 100) - 5 / 105) < 1e-9  # exact: one error in five requests is weak evidence
    assert worse_p_value(1, 5, 0, 100) > GatePolicy().alpha
    assert worse_p_value(0, 100, 5, 100) > 0.5  # a better canary is never "worse"


def test_verdicts():
    policy = GatePolicy(min_requests=30)
    stable = [ev()] * 300
    good = [ev(variant="canary")] * 60
    assert analyze(stable, good, {"run_id": 1, "regressed": False}, policy)[0] == "promote"
    assert analyze(stable, good[:10], {"run_id": 1, "regressed": False}, policy)[0] == "hold"
    assert analyze(stable, good, None, policy)[0] == "hold"
    erroring = [ev(503, fallback="store_unavailable", variant="canary")] * 15 + good[:45]
    verdict, reasons, evidence = analyze(stable, erroring, {"run_id": 1, "regressed": False}, policy)
    assert verdict == "rollback" and "error rate" in reasons[0] and evidence["tests"]["error_rate_p"] < 0.01
    slow = [ev(latency=200.0, variant="canary")] * 60
    assert analyze(stable, slow, {"run_id": 1, "regressed": False}, policy)[1][0].startswith("canary p95")
    assert analyze(stable, good, {"run_id": 2, "regressed": True}, policy)[0] == "rollback"


def test_a_single_unlucky_error_does_not_roll_back():
    policy = GatePolicy(min_requests=30)
    stable = [ev()] * 300 + [ev(500)] * 3
    canary = [ev(variant="canary")] * 59 + [ev(500, variant="canary")]
    assert analyze(stable, canary, {"run_id": 1, "regressed": False}, policy)[0] == "promote"
