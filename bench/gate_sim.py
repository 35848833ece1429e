"""Simulated canary rollouts through the real gate (ragops.rollout.gate.analyze), the previous rule and Flagger's.

Each rollout: sticky users (log-normal activity, some users more error-prone than others) send requests at a
steady rate; the gate looks every 15 minutes at everything since the rollout began and moves the canary through
10% -> 25% -> 50% -> 100% with a 30-minute bake time per stage, or rolls it back. Candidates: equal to stable; +3
points of errors; +50% latency on a slow (LLM-backed, ~800 ms) service; 20 ms of jitter on a fast (~25 ms) one.
Traffic: low (5 requests/min from 400 users), the same with probe traffic while the gate holds (50 test-set
requests to each variant per look, from fresh users), and high (100/min from 5,000 users). Rollouts that decide
nothing within three days are counted apart.

The previous rule (bench/legacy_gate.py) and Flagger's threshold rule run on the same simulated traffic. Flagger:
every interval (here: every look) the canary's metrics over that interval are checked against fixed thresholds
(error rate <= stable's + 2 points, p99 <= max(1.2x, +100 ms) of stable's, a fallback rate <= stable's + 5 points);
a failed check (or no canary traffic) adds one to a counter and halts advancement, a passed one advances a stage,
and the canary is rolled back when the counter reaches `threshold` (5, as in Flagger's documentation).

Usage: python bench/gate_sim.py [--rollouts 1000] [--seed 7]   (prints one JSON document)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import legacy_gate  # noqa: E402

from ragops.rollout.gate import GatePolicy, Sample, analyze  # noqa: E402

STAGES = [10.0, 25.0, 50.0, 100.0]
LOOK_MIN, BAKE_LOOKS = 15, 2  # a look every 15 minutes; each stage lasts at least 30 minutes
HORIZON_LOOKS = 3 * 24 * 4  # three days
PASSED = {"run_id": 0, "regressed": False}
TRAFFIC = {"low": (5.0, 400), "low_with_probes": (5.0, 400), "high": (100.0, 5000)}  # requests/minute, users
PROBES, PROBE_FALLBACKS = 50, 0.02  # per variant and look while a gate holds (Flagger: a load test at every look)
PROFILES = {"fast": (25.0, 0.4), "slow": (800.0, 0.5)}  # median ms, log-normal sigma
SCENARIOS = {  # profile, extra canary error rate, canary latency transform
    "equal": ("fast", 0.0, None),
    "errors_plus_3_points": ("fast", 0.03, None),
    "latency_plus_50_percent": ("slow", 0.0, lambda rng, lat: lat * 1.5),
    "jitter_20ms": ("fast", 0.0, lambda rng, lat: lat + rng.uniform(0, 40, len(lat))),
}
BASE_ERRORS, BASE_FALLBACKS, FLAGGER_THRESHOLD = 0.01, 0.05, 5


class World:
    """One rollout's users and traffic; `look()` returns the requests of the next 15 minutes."""

    def __init__(self, rng, traffic: str, scenario: str):
        self.rng = rng
        self.rate, n_users = TRAFFIC[traffic]
        profile, self.extra_errors, self.slow = SCENARIOS[scenario]
        self.median, self.sigma = PROFILES[profile]
        weights = rng.lognormal(0.0, 1.0, n_users)  # a few users send many times the median user's requests
        self.cumulative = np.cumsum(weights / weights.sum())
        self.bucket = rng.uniform(0, 100, n_users)  # the sticky hash
        self.propensity = rng.gamma(0.5, 2.0, n_users)  # some users' questions fail more often (mean 1)
        self.next_probe = n_users
        self.probe_requests = PROBES if traffic.endswith("probes") else 0

    def look(self, percent: float) -> tuple[Sample, Sample]:
        rng = self.rng
        n = rng.poisson(self.rate * LOOK_MIN)
        users = np.minimum(np.searchsorted(self.cumulative, rng.random(n)), len(self.cumulative) - 1)
        canary = self.bucket[users] < percent
        p_error = np.minimum(BASE_ERRORS * self.propensity[users] + canary * self.extra_errors, 1.0)
        errors = rng.random(n) < p_error
        fallbacks = ~errors & (rng.random(n) < BASE_FALLBACKS)
        latency = self.median * np.exp(rng.normal(0, self.sigma, n))
        if self.slow is not None:
            latency[canary] = self.slow(rng, latency[canary])
        parts = (users, errors, fallbacks, latency, np.zeros(n, dtype=bool))
        return (Sample(*(p[~canary] for p in parts)), Sample(*(p[canary] for p in parts)))

    def probes(self, n: int) -> tuple[Sample, Sample]:
        """`n` probe requests to each variant, each from a fresh user (as rollout/probe.py sends them)."""
        rng, out = self.rng, []
        for canary in (False, True):
            users = self.next_probe + np.arange(n)
            self.next_probe += n
            errors = rng.random(n) < BASE_ERRORS + canary * self.extra_errors
            fallbacks = ~errors & (rng.random(n) < PROBE_FALLBACKS)
            latency = self.median * np.exp(rng.normal(0, self.sigma, n))
            if canary and self.slow is not None:
                latency = self.slow(rng, latency)
            out.append(Sample(users, errors, fallbacks, latency, np.ones(n, dtype=bool)))
        return out[0], out[1]


FIELDS = ("users", "errors", "fallbacks", "latency_ms", "synthetic")


def _join(a: Sample, b: Sample) -> Sample:
    return Sample(*(np.concatenate([getattr(a, f), getattr(b, f)]) for f in FIELDS))


def _empty() -> Sample:
    return Sample(np.zeros(0, int), np.zeros(0, bool), np.zeros(0, bool), np.zeros(0), np.zeros(0, bool))


def simulate(rng, traffic: str, scenario: str, gate: str, policy: GatePolicy) -> dict:
    world = World(rng, traffic, scenario)
    stage, looks_in_stage, failed = 0, 0, 0
    total_s, total_c, stage_s, stage_c = _empty(), _empty(), _empty(), _empty()
    requests, probing = 0, False
    for look in range(1, HORIZON_LOOKS + 1):
        s, c = world.look(STAGES[stage])
        if probing or (gate == "flagger" and world.probe_requests):
            ps, pc = world.probes(world.probe_requests)
            s, c = _join(s, ps), _join(c, pc)
        requests += len(s) + len(c)
        total_s, total_c, stage_s, stage_c = _join(total_s, s), _join(total_c, c), _join(stage_s, s), _join(stage_c, c)
        looks_in_stage += 1
        if gate == "ragops":
            verdict = analyze(total_s, total_c, PASSED, policy, detail=False).verdict
            if verdict == "promote" and looks_in_stage < BAKE_LOOKS:
                verdict = "hold"
        elif gate == "previous":
            verdict = legacy_gate.verdict(stage_s, stage_c)
            if verdict == "promote" and looks_in_stage < BAKE_LOOKS:
                verdict = "hold"
        else:
            verdict = _flagger(s, c, policy)
            if verdict == "hold":
                failed += 1
                verdict = "rollback" if failed >= FLAGGER_THRESHOLD else "hold"
        probing = verdict == "hold" and world.probe_requests > 0
        if verdict == "rollback":
            return {"outcome": "rolled_back", "stage": STAGES[stage], "looks": look, "requests": requests}
        if verdict == "promote":
            stage, looks_in_stage, stage_s, stage_c = stage + 1, 0, _empty(), _empty()
            if STAGES[stage] >= 100:
                return {"outcome": "completed", "stage": 100.0, "looks": look, "requests": requests}
    return {"outcome": "undecided", "stage": STAGES[stage], "looks": HORIZON_LOOKS, "requests": requests}


def _flagger(s: Sample, c: Sample, policy: GatePolicy) -> str:
    """One Flagger interval check on this look's requests: promote (advance) or hold (a failed check)."""
    if len(c) == 0 or len(s) == 0:
        return "hold"  # "no values found": a failed check
    s99 = np.percentile(s.latency_ms, 99)
    if c.errors.mean() > s.errors.mean() + policy.error_mde or c.fallbacks.mean() > s.fallbacks.mean() + policy.fallback_mde:
        return "hold"
    if np.percentile(c.latency_ms, 99) > max(policy.latency_ratio * s99, s99 + policy.latency_margin_ms):
        return "hold"
    return "promote"


def summarize(runs: list[dict]) -> dict:
    n = len(runs)
    decided = [r for r in runs if r["outcome"] != "undecided"]
    share = {o: round(sum(r["outcome"] == o for r in runs) / n, 4) for o in ("rolled_back", "completed", "undecided")}
    return share | {"rollouts": n, "rolled_back_at": {f"{p:g}%": sum(r["outcome"] == "rolled_back" and r["stage"] == p
                                                                    for r in runs) for p in STAGES[:-1]},
                    "median_requests_to_decision": int(np.median([r["requests"] for r in decided])) if decided else None,
                    "median_hours_to_decision": round(float(np.median([r["looks"] for r in decided])) * LOOK_MIN / 60, 2)
                    if decided else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rollouts", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--gates", default="ragops,previous,flagger")
    args = parser.parse_args()
    policy = GatePolicy()
    results, started = {}, time.perf_counter()
    for scenario in SCENARIOS:
        for traffic in TRAFFIC:
            for gate in args.gates.split(","):
                rng = np.random.default_rng([args.seed, list(SCENARIOS).index(scenario), list(TRAFFIC).index(traffic)])
                runs = [simulate(rng, traffic, scenario, gate, policy) for _ in range(args.rollouts)]
                results.setdefault(scenario, {}).setdefault(traffic, {})[gate] = summarize(runs)
                print(f"{scenario} {traffic} {gate}: {results[scenario][traffic][gate]}", file=sys.stderr, flush=True)
    print(json.dumps({"seed": args.seed, "rollouts_per_cell": args.rollouts, "policy": policy.__dict__,
                      "traffic_per_minute": {k: v[0] for k, v in TRAFFIC.items()}, "look_minutes": LOOK_MIN,
                      "bake_minutes": LOOK_MIN * BAKE_LOOKS, "horizon_days": HORIZON_LOOKS * LOOK_MIN / 1440,
                      "results": results, "seconds": round(time.perf_counter() - started, 1)}, indent=1))


if __name__ == "__main__":
    main()
