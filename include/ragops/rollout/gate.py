"""The canary analysis: is the candidate at least as good as stable on real traffic and on the test set?

Error and fallback rates are compared with a one-sided Fisher exact test (is the canary worse?). It is exact at
the small counts of an early canary, where a normal-approximation z-test is wildly overconfident (one error in
five requests against none in a hundred reads p=0.000004 by z-test and p=0.048 exactly), so a few unlucky
requests do not roll back a good release and a real regression is not waved through. A practical margin keeps a
statistically certain but negligible difference from failing the gate.
"""

from __future__ import annotations

from dataclasses import dataclass

from ragops.monitoring.aggregate import summarize


@dataclass(frozen=True)
class GatePolicy:
    min_requests: int = 50  # canary requests needed before any verdict but "hold"
    alpha: float = 0.01  # one-sided significance of "canary is worse"
    error_margin: float = 0.01  # differences smaller than this never fail the gate
    fallback_margin: float = 0.05
    max_latency_ratio: float = 1.5  # canary p95 / stable p95


def worse_p_value(bad_canary: int, n_canary: int, bad_stable: int, n_stable: int) -> float:
    """p-value of H1 "the canary's rate is higher" (one-sided Fisher exact test on the 2x2 table)."""
    from scipy.stats import fisher_exact

    if n_canary == 0 or n_stable == 0:
        return 1.0
    table = [[bad_canary, n_canary - bad_canary], [bad_stable, n_stable - bad_stable]]
    return float(fisher_exact(table, alternative="greater").pvalue)


def analyze(stable_events: list[dict], canary_events: list[dict], evaluation: dict | None,
            policy: GatePolicy) -> tuple[str, list[str], dict]:
    """Returns (verdict, reasons, evidence); verdict is promote, hold or rollback."""
    served = [e for e in canary_events if e["status"] != 429]
    baseline = [e for e in stable_events if e["status"] != 429]
    s, c = summarize(baseline), summarize(served)
    evidence = {"stable": s, "canary": c, "evaluation": evaluation, "policy": policy.__dict__}
    failures, holds = [], []

    def fallbacks(events):
        return sum(1 for e in events if e["fallback"] and e["status"] < 500)

    p_err = worse_p_value(c["errors"], c["requests"], s["errors"], s["requests"])
    p_fb = worse_p_value(fallbacks(served), len(served), fallbacks(baseline), len(baseline))
    evidence["tests"] = {"error_rate_p": round(p_err, 5), "fallback_rate_p": round(p_fb, 5)}
    if c["requests"] and p_err < policy.alpha and c["error_rate"] - s["error_rate"] > policy.error_margin:
        failures.append(f"canary error rate {c['error_rate']:.2%} vs stable {s['error_rate']:.2%} (p={p_err:.4f})")
    fb_c = fallbacks(served) / max(1, len(served))
    fb_s = fallbacks(baseline) / max(1, len(baseline))
    if served and p_fb < policy.alpha and fb_c - fb_s > policy.fallback_margin:
        failures.append(f"canary fallback rate {fb_c:.2%} vs stable {fb_s:.2%} (p={p_fb:.4f})")
    if c["requests"] >= policy.min_requests and s["requests"] and s["p95_ms"]:
        ratio = c["p95_ms"] / s["p95_ms"]
        evidence["tests"]["p95_ratio"] = round(ratio, 3)
        if ratio > policy.max_latency_ratio:
            failures.append(f"canary p95 {c['p95_ms']} ms is {ratio:.2f}x stable's {s['p95_ms']} ms")
    if evaluation is not None and evaluation.get("regressed"):
        failures.append(f"the candidate's evaluation run {evaluation.get('run_id')} regressed")
    if failures:
        return "rollback", failures, evidence
    if c["requests"] < policy.min_requests:
        holds.append(f"only {c['requests']} canary requests so far; {policy.min_requests} are needed for a verdict")
    if evaluation is None:
        holds.append("the candidate has no evaluation run yet")
    if holds:
        return "hold", holds, evidence
    return "promote", [f"canary matches stable on {c['requests']} requests (errors p={p_err:.3f}, fallbacks "
                       f"p={p_fb:.3f}) and on the test set"], evidence
