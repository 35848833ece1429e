"""Simulated canary rollouts through the real gate (ragops.rollout.gate.analyze), the previous rule and Flagger's.

Each rollout: the world of bench/gate_world.py (sticky users, a candidate, a traffic level) sends requests; the gate
looks every 15 minutes at everything since the rollout began, each request tagged with its stage as
rollout/machine.py tags it, and moves the canary through 10% -> 25% -> 50% -> 100% with a 30-minute bake time per
stage, or rolls it back. Rollouts that decide nothing within three days are counted apart as undecided. On a hold
the real low-traffic policy (rollout/traffic.py) is asked, as Rollout.step asks it: it may raise the canary's share
(a new stratum), extend the horizon or ask a person, and each row counts the rollouts that took each action.

The previous rule (bench/legacy_gate.py) and Flagger's threshold rule run on the same simulated traffic. Flagger:
every interval (here: every look) the canary's metrics over that interval are checked against fixed thresholds
(error rate <= stable's + 2 points, p99 <= max(1.2x, +100 ms) of stable's, a fallback rate <= stable's + 5 points);
a failed check (or no canary traffic) adds one to a counter and halts advancement, a passed one advances a stage,
and the canary is rolled back when the counter reaches `threshold` (5, as in Flagger's documentation).

Each row is judged against issue 20's targets (`target()`): a harmless candidate (equal or jitter) rolled back in at
most 1% of rollouts; a harmful one at or above the minimum effect rolled back in at least 95% at medium and high
traffic; elsewhere a harmful one promoted in at most 5%, with the share left undecided reported.

Usage: python bench/gate_sim.py [--rollouts 40] [--rollouts-low 8] [--seed 7] [--traffic high,medium,low]
       [--scenario equal,...] [--gates ragops,previous,flagger] [--stages 10,25,50,100] [--max-percent 25] [--markdown]
       (one JSON document, or with --markdown the table of docs/benchmarks.md "Release gates"; progress on stderr)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import legacy_gate  # noqa: E402
from gate_world import LOOK_MIN, SCENARIOS, STAGES, TRAFFIC, World  # noqa: E402

from ragops.rollout.gate import Analysis, GatePolicy, Sample, analyze  # noqa: E402
from ragops.rollout.traffic import ACTIONS, Seen, TrafficPolicy, low_traffic  # noqa: E402

BAKE_LOOKS = 2  # each stage lasts at least 30 minutes
HORIZON_LOOKS = 3 * 24 * 4  # three days
PASSED = {"run_id": 0, "regressed": False}
FLAGGER_THRESHOLD = 5
FLAGGER_MARGIN_MS = 100.0  # its p99 check: max(1.2x, +100 ms) over stable's, fixed (not the ragops gate's SLO floor)
GATES = ("ragops", "previous", "flagger")
FIELDS = ("users", "errors", "fallbacks", "latency_ms", "synthetic", "stratum")
START = datetime(2026, 1, 1, tzinfo=timezone.utc)  # looks are timed from here, for the low-traffic policy


def _join(a: Sample, b: Sample) -> Sample:
    return Sample(*(np.concatenate([getattr(a, f), getattr(b, f)]) for f in FIELDS))


def _empty() -> Sample:
    return Sample(np.zeros(0, int), np.zeros(0, bool), np.zeros(0, bool), np.zeros(0), np.zeros(0, bool),
                  np.zeros(0, int))


def _at(look: int) -> datetime:
    return START + timedelta(minutes=LOOK_MIN * look)


def _low_traffic(analysis: Analysis, stages: list[float], stage: int, percent: float, look: int, stage_from: int,
                 policy: GatePolicy, traffic: TrafficPolicy) -> dict | None:
    """rollout/traffic.py's decision on a hold, as Rollout.step asks it (the real policy code, not a copy)."""
    counted = analysis.evidence["counted"]
    seen = Seen(counted["users"], counted["requests"], policy.min_users, policy.min_requests)
    ceiling = stages[stage + 1] if stage + 1 < len(stages) else percent
    return low_traffic(seen, percent, ceiling, START, _at(stage_from), _at(look), traffic, analysis.unsure())


def simulate(rng, traffic: str, scenario: str, gate: str, policy: GatePolicy,
             traffic_policy: TrafficPolicy = TrafficPolicy(), stages: list[float] = STAGES) -> dict:
    """One rollout under one rule: its outcome, the stage it ended at, the looks and requests it took, and (ragops)
    the low-traffic actions taken: a share raised, a horizon extended, a person asked."""
    world = World(rng, TRAFFIC[traffic], SCENARIOS[scenario], stages)
    stage, looks_in_stage, failed, stratum, percent, stage_from = 0, 0, 0, 0, stages[0], 0
    total_s, total_c, stage_s, stage_c = _empty(), _empty(), _empty(), _empty()
    requests, probing, actions = 0, False, set()
    for look in range(1, HORIZON_LOOKS + 1):
        s, c = world.look(stage, percent, stratum)
        if probing or (gate == "flagger" and world.probe_requests):
            ps, pc = world.probes(stage, stratum)
            s, c = _join(s, ps), _join(c, pc)
        requests += len(s) + len(c)
        total_s, total_c, stage_s, stage_c = _join(total_s, s), _join(total_c, c), _join(stage_s, s), _join(stage_c, c)
        looks_in_stage += 1
        if gate == "ragops":
            analysis = analyze(total_s, total_c, PASSED, policy, detail=False)
            verdict = analysis.verdict
            if verdict == "promote" and looks_in_stage < BAKE_LOOKS:
                verdict = "hold"
            low = _low_traffic(analysis, stages, stage, percent, look, stage_from, policy, traffic_policy) \
                if verdict == "hold" else None
            actions |= {low["action"]} if low else set()
            if low and low["action"] == "raise_share":  # a new stratum at the raised share; the stage's clock restarts
                percent, stratum, stage_from, looks_in_stage = low["to_percent"], stratum + 1, look, 0
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
        done = {"looks": look, "requests": requests, "low_traffic": sorted(actions)}
        if verdict == "rollback":
            return done | {"outcome": "rolled_back", "stage": stages[stage]}
        if verdict == "promote":
            stage, looks_in_stage, stage_s, stage_c = stage + 1, 0, _empty(), _empty()
            stratum, percent, stage_from = stratum + 1, stages[stage], look
            if stages[stage] >= 100:
                return done | {"outcome": "promoted", "stage": 100.0}
    return {"outcome": "undecided", "stage": stages[stage], "looks": HORIZON_LOOKS, "requests": requests,
            "low_traffic": sorted(actions)}


def _flagger(s: Sample, c: Sample, policy: GatePolicy) -> str:
    """One Flagger interval check on this look's requests: promote (advance) or hold (a failed check)."""
    if len(c) == 0 or len(s) == 0:
        return "hold"  # "no values found": a failed check
    s99 = np.percentile(s.latency_ms, 99)
    if c.errors.mean() > s.errors.mean() + policy.error_mde or c.fallbacks.mean() > s.fallbacks.mean() + policy.fallback_mde:
        return "hold"
    if np.percentile(c.latency_ms, 99) > max(policy.latency_ratio * s99, s99 + FLAGGER_MARGIN_MS):
        return "hold"
    return "promote"


def summarize(runs: list[dict], stages: list[float] = STAGES) -> dict:
    """Outcome shares, and the time to a decision over the decided rollouts only, beside how many were undecided."""
    n = len(runs)
    decided = [r for r in runs if r["outcome"] != "undecided"]
    share = {o: round(sum(r["outcome"] == o for r in runs) / n, 4) for o in ("rolled_back", "promoted", "undecided")}
    return share | {"rollouts": n, "undecided_rollouts": n - len(decided),
                    "low_traffic": {a: sum(a in r["low_traffic"] for r in runs) for a in ACTIONS},
                    "rolled_back_at": {f"{p:g}%": sum(r["outcome"] == "rolled_back" and r["stage"] == p
                                                      for r in runs) for p in stages[:-1]},
                    "median_requests_to_decision": int(np.median([r["requests"] for r in decided])) if decided else None,
                    "median_hours_to_decision": round(float(np.median([r["looks"] for r in decided])) * LOOK_MIN / 60, 2)
                    if decided else None}


def target(scenario: str, traffic: str, summary: dict, policy: GatePolicy) -> dict:
    """Issue 20's target for this row, and whether the row meets it."""
    s = SCENARIOS[scenario]
    if s.harm is None:
        return {"target": f"rolled back <= {policy.false_rollback:.0%}",
                "met": summary["rolled_back"] <= policy.false_rollback}
    level = TRAFFIC[traffic].level
    at_minimum = s.at_minimum if isinstance(s.at_minimum, bool) else level in s.at_minimum
    if at_minimum and level in ("medium", "high"):
        return {"target": f"rolled back >= {1 - policy.false_promotion:.0%}",
                "met": summary["rolled_back"] >= 1 - policy.false_promotion}
    return {"target": f"promoted <= {policy.false_promotion:.0%} (undecided reported)",
            "met": summary["promoted"] <= policy.false_promotion}


def run(rollouts: int, seed: int, traffics: list[str], scenarios: list[str], gates: list[str],
        rollouts_low: int | None = None, stages: list[float] = STAGES,
        traffic_policy: TrafficPolicy = TrafficPolicy()) -> dict:
    """Every selected cell; a cell's figures depend only on the seed and its own scenario and traffic level.
    `rollouts_low` caps the rollouts at low traffic, where each undecided one costs three days of looks. `stages` and
    `traffic_policy` are RAGOPS_ROLLOUT_STAGES and the low-traffic settings (the share a raise may reach)."""
    policy, started = GatePolicy(), time.perf_counter()
    results = {scenario: {} for scenario in scenarios}  # rows by scenario; computed traffic level by level
    for traffic in traffics:
        n = rollouts_low if rollouts_low and TRAFFIC[traffic].level == "low" else rollouts
        for scenario in [s for s in scenarios if SCENARIOS[s].only is None or traffic in SCENARIOS[s].only]:
            for gate in gates:
                rng = np.random.default_rng([seed, list(SCENARIOS).index(scenario), list(TRAFFIC).index(traffic)])
                runs = [simulate(rng, traffic, scenario, gate, policy, traffic_policy, stages) for _ in range(n)]
                row = summarize(runs, stages)
                row |= target(scenario, traffic, row, policy)
                results[scenario].setdefault(traffic, {})[gate] = row
                print(f"{scenario} {traffic} {gate}: {row}", file=sys.stderr, flush=True)
    return {"seed": seed, "rollouts_per_cell": rollouts, "rollouts_per_low_traffic_cell": rollouts_low or rollouts,
            "policy": policy.__dict__, "stages": stages, "traffic_policy": traffic_policy.__dict__,
            "traffic": {k: TRAFFIC[k].__dict__ for k in traffics},
            "scenarios": {k: {"label": SCENARIOS[k].label, "harm": SCENARIOS[k].harm,
                              "at_minimum": SCENARIOS[k].at_minimum} for k in scenarios},
            "look_minutes": LOOK_MIN, "bake_minutes": LOOK_MIN * BAKE_LOOKS,
            "horizon_days": HORIZON_LOOKS * LOOK_MIN / 1440, "results": results,
            "seconds": round(time.perf_counter() - started, 1)}


def markdown(doc: dict) -> str:
    """The results as docs/benchmarks.md shows them: one row per scenario, traffic level and rule."""
    lines = ["| candidate | harmful? | traffic | gate | rolled back | promoted | undecided (3 days) "
             "| median hours to a decision (decided only) | low traffic: raised / extended / asked a person "
             "| target | met |", "|---" * 11 + "|"]
    for scenario, by_traffic in doc["results"].items():
        harm = doc["scenarios"][scenario]["harm"] or "no"
        for traffic, by_gate in by_traffic.items():
            for gate, r in by_gate.items():
                hours = "-" if r["median_hours_to_decision"] is None else f"{r['median_hours_to_decision']:g}"
                low = " / ".join(str(r["low_traffic"][a]) for a in ACTIONS) if gate == "ragops" else "-"
                cells = [doc["scenarios"][scenario]["label"], harm, traffic.replace("_", " "), gate,
                         f"{r['rolled_back']:.1%}", f"{r['promoted']:.1%}",
                         f"{r['undecided']:.1%} ({r['undecided_rollouts']})", hours, low, r["target"],
                         "yes" if r["met"] else "**no**"]
                lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _names(value: str, known: dict | tuple) -> list[str]:
    names = value.split(",")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown {unknown}; choose from {', '.join(known)}")
    return names


def _stages(value: str) -> list[float]:
    """Increasing shares ending at 100, as the rollout's settings require."""
    try:
        stages = [float(v) for v in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"stages must be numbers, not {value!r}") from None
    if stages[-1] != 100 or any(b <= a for a, b in zip(stages, stages[1:])) or stages[0] <= 0:
        raise argparse.ArgumentTypeError(f"stages must increase from above 0 to 100, not {value!r}")
    return stages


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # the defaults are docs/benchmarks.md's run (small cells, for two busy cores); use more rollouts on a quiet machine
    parser.add_argument("--rollouts", type=int, default=40)
    parser.add_argument("--rollouts-low", type=int, default=8, help="rollouts per cell at low traffic, where an "
                        "undecided rollout costs three days of looks (0: as --rollouts)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--traffic", type=lambda v: _names(v, TRAFFIC), default=["high", "medium", "low"],
                        help=f"comma-separated, of {', '.join(TRAFFIC)}")
    parser.add_argument("--scenario", type=lambda v: _names(v, SCENARIOS), default=list(SCENARIOS),
                        help=f"comma-separated, of {', '.join(SCENARIOS)}")
    parser.add_argument("--gates", type=lambda v: _names(v, GATES), default=list(GATES))
    parser.add_argument("--stages", type=_stages, default=STAGES, help="the canary's shares, comma-separated, ending "
                        "at 100 (RAGOPS_ROLLOUT_STAGES; default 10,25,50,100)")
    parser.add_argument("--max-percent", type=float, default=TrafficPolicy().max_percent, help="the share a "
                        "low-traffic or slow-evidence raise may reach (RAGOPS_ROLLOUT_LOW_TRAFFIC_MAX_PERCENT)")
    parser.add_argument("--markdown", action="store_true", help="print the table of docs/benchmarks.md, not JSON")
    args = parser.parse_args(argv)
    traffic_policy = TrafficPolicy(TrafficPolicy().horizon_hours, args.max_percent, TrafficPolicy().extension)
    doc = run(args.rollouts, args.seed, args.traffic, args.scenario, args.gates, args.rollouts_low, args.stages,
              traffic_policy)
    print(markdown(doc) if args.markdown else json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
