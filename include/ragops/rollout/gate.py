"""The canary analysis: does the candidate serve real users as well as stable, with evidence enough to say so?

Seven metrics, each an always-valid comparison by user (monitoring/sequential.py):
- error rate (5xx responses), canary against stable, per request and per user (each user's own rate, every user
  weighted equally), and per user within each activity tier (rollout/tiers.py: quartiles of the users' own request
  counts, Bonferroni over the tiers), so that a regression confined to a minority of light users shows;
- fallback rate (answers that fell back, e.g. `no_results`), canary against stable, per request and per user;
- latency: within each stratum, stable's own p95 t and the canary's limit max(ratio x t, t + margin); the share of
  canary requests above the limit against the share of stable requests above t (5% by construction, but estimated,
  so its uncertainty is counted; requests tied at t count in part, so that ties cannot move that share), a
  two-sample comparison like the rates, i.e. "is the canary's p95 above the limit?". The margin is a small fraction
  of the service's own p95 objective (`RAGOPS_SLO_P95_LATENCY_MS`), so a fast service's 2x slowdown fails while a
  few milliseconds of jitter never do, and a slow service is held to the ratio;
- typical latency: each user's geometric-mean latency, the canary's against stable's, held to the same limit on the
  median, which heavy tails and users' own slowness barely move.

Verdicts: `rollback` as soon as any metric is worse with confidence (the chance of ever rolling back an equal candidate
over the whole rollout is at most `false_rollback`, split over the seven metrics); `promote` only once every metric
rules out a regression larger than its allowed size (the chance of promoting a candidate that is worse by more is at
most `false_promotion`); `hold` in between. Evidence accumulates over the whole rollout, but rates are compared
within strata, the rollout stage (or raised share) each request was served in (and probes apart), and then combined:
the canary's share grows from stage to stage, so pooling would put most of an incident shared by both variants into
the canary's average (Simpson's paradox). A user seen in several stages is one cluster across them.

Probes (synthetic traffic, rollout/probe.py) are one user per question and side, so the test set's questions are
clustered by question, and they never count toward `min_users` or `min_requests`: probe evidence alone cannot promote.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from ragops.monitoring.aggregate import served_status  # the one rule of what is an answer: monitoring's too
from ragops.monitoring.sequential import Clustered, Comparison, compare_clustered, compare_means
from ragops.rollout.tiers import activity_tiers

METRICS = ("error_rate", "fallback_rate", "latency", "latency_typical", "error_rate_per_user", "fallback_rate_per_user",
           "error_rate_by_tier")


@dataclass(frozen=True)
class GatePolicy:
    false_rollback: float = 0.01  # P(ever rolling back a candidate as good as stable), whole rollout
    false_promotion: float = 0.05  # P(promoting one worse than allowed); also "95%" in the verdicts
    error_mde: float = 0.02  # the regression that must be ruled out before promoting (+2 points)
    fallback_mde: float = 0.05
    latency_ratio: float = 1.2  # slower than both 1.2x stable's p95 ...
    latency_margin_ms: float = 15.0  # ... and stable's p95 + this floor (from_settings: a fraction of the p95 SLO)
    latency_share: float = 0.05  # i.e. the p95
    min_users: int = 20  # distinct canary users before a promotion
    min_requests: int = 50  # canary requests before a promotion
    user_tiers: tuple[float, ...] = (0.25, 0.5, 0.75)  # activity tiers' cut points, as shares of users
    tier_allowed: float = 2.0  # a tier must rule out this many times error_mde among its own users (compare())

    @classmethod
    def from_settings(cls, settings) -> GatePolicy:
        """The latency floor scales with the service's own objective: what counts as jitter for a 1.5 s service is a
        regression for a 25 ms one, and a constant would be wrong for one of them."""
        floor = settings.rollout_latency_margin_slo_fraction * settings.slo_p95_latency_ms
        return cls(settings.rollout_false_rollback, settings.rollout_false_promotion, settings.rollout_error_mde,
                   settings.rollout_fallback_mde, settings.rollout_latency_ratio, floor, 0.05,
                   settings.rollout_min_users, settings.rollout_min_requests)


@dataclass
class Sample:
    """One variant's served requests (4xx excluded: served_status) as arrays; `users` are integer codes shared by both
    variants."""

    users: np.ndarray
    errors: np.ndarray
    fallbacks: np.ndarray
    latency_ms: np.ndarray
    synthetic: np.ndarray = field(default=None)  # probe traffic, analysed as its own stratum
    stratum: np.ndarray = field(default=None)  # small integer codes: the rollout stage each request was served in

    def __post_init__(self):
        if self.synthetic is None:
            self.synthetic = np.zeros(len(self.users), dtype=bool)
        if self.stratum is None:
            self.stratum = np.zeros(len(self.users), dtype=int)

    def __len__(self) -> int:
        return len(self.users)


@dataclass
class Analysis:
    verdict: str  # promote | hold | rollback
    reasons: list[str]
    evidence: dict

    def unsure(self) -> tuple[str, ...]:
        """The metrics that neither fail nor rule out their regression yet (what a hold waits for)."""
        return tuple(m for m, c in self.evidence["metrics"].items() if c["verdict"] == "unsure")


def samples_from_events(events: list[dict], anonymous: str = "exclude", per_address: int = 5) -> tuple[Sample, Sample]:
    """(stable, canary) from request events (dicts with variant, user_hash, status, fallback, latency_ms, synthetic,
    `verified`, and `stratum`: the stage in force when the request was served, any sortable label), oldest first.

    Events of callers without an API key (`verified` false) count as `anonymous` says: `exclude`, not at all, or
    `address`, each address (their user_hash) one user with its first `per_address` requests. Events without
    `verified` (simulations) count as verified."""
    served = _counted([e for e in events if served_status(e["status"])], anonymous, per_address)
    strata = np.unique([e.get("stratum") or 0 for e in served], return_inverse=True)[1] if served else np.zeros(0, int)
    _, codes = np.unique(np.array([e.get("user_hash") or "" for e in served], dtype=object).astype(str),
                         return_inverse=True)
    status = np.array([e["status"] for e in served], dtype=int)
    fallback = np.array([bool(e["fallback"]) for e in served], dtype=bool)
    latency = np.array([e["latency_ms"] for e in served], dtype=float)
    synthetic = np.array([bool(e.get("synthetic")) for e in served], dtype=bool)
    variant = np.array([e["variant"] for e in served], dtype=object)

    def take(name: str) -> Sample:
        m = variant == name
        return Sample(codes[m], status[m] >= 500, fallback[m] & (status[m] < 500), latency[m], synthetic[m],
                      strata[m])

    return take("stable"), take("canary")


def _counted(events: list[dict], anonymous: str, per_address: int) -> list[dict]:
    """The events the gate may count: anyone can send anonymous requests, as many as the address limit allows, and
    choose their questions, so anonymous traffic weighs at most `per_address` requests per address, or nothing."""
    if anonymous not in ("exclude", "address"):
        raise ValueError(f"RAGOPS_ROLLOUT_ANONYMOUS must be exclude or address, not {anonymous!r}")
    seen: Counter = Counter()
    counted = []
    for e in events:
        if not e.get("verified", True):
            seen[e.get("user_hash")] += 1
            if anonymous == "exclude" or seen[e.get("user_hash")] > per_address:
                continue
        counted.append(e)
    return counted


def summary(sample: Sample) -> dict:
    n = len(sample)
    if n == 0:
        return {"requests": 0, "users": 0, "errors": 0, "error_rate": 0.0, "fallback_rate": 0.0, "p50_ms": None,
                "p95_ms": None, "probes": 0}
    ok = sample.latency_ms[~sample.errors]
    p50, p95 = (np.percentile(ok, [50, 95]) if len(ok) else (np.nan, np.nan))
    return {"requests": n, "users": _real_users(sample), "errors": int(sample.errors.sum()),
            "error_rate": round(float(sample.errors.mean()), 4), "fallback_rate": round(float(sample.fallbacks.mean()), 4),
            "p50_ms": None if np.isnan(p50) else round(float(p50), 2),
            "p95_ms": None if np.isnan(p95) else round(float(p95), 2), "probes": int(sample.synthetic.sum())}


def _real_users(sample: Sample) -> int:
    """Distinct users who are not probes: only they count toward `min_users`."""
    real = sample.users[~sample.synthetic]
    return int(np.count_nonzero(np.bincount(real))) if len(real) else 0


def _codes(sample: Sample, n_stages: int) -> np.ndarray:
    """One stratum per stage for real users and one per stage for probes."""
    return sample.stratum.astype(int) + n_stages * sample.synthetic


def _over_p95(latency_ms: np.ndarray, p95: float, share: float) -> np.ndarray:
    """Stable's requests above its p95; those exactly at it count in part, so that the share is `share` even when many
    requests tie there (a cache, a timer's resolution), where "above" alone would give 0 and "at or above" up to 1."""
    above, tied = latency_ms > p95, latency_ms == p95
    part = (share * len(latency_ms) - above.sum()) / tied.sum() if tied.any() else 0.0
    return above + min(max(part, 0.0), 1.0) * tied


def _latency_flags(stable: Sample, canary: Sample, k_s: np.ndarray, k_c: np.ndarray, n_stages: int,
                   policy: GatePolicy) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """(stable's slow, canary's slow, the thresholds): in each stratum with served requests in both variants, a stable
    request is slow above stable's own p95 there, a canary request above the limit over that p95."""
    slow_s, slow_c = np.zeros(len(stable)), np.zeros(len(canary))
    served_s, served_c = ~stable.errors, ~canary.errors
    thresholds = []
    for k in range(2 * n_stages):
        in_s, in_c = served_s & (k_s == k), served_c & (k_c == k)
        if not (in_s.any() and in_c.any()):
            continue
        p95 = float(np.percentile(stable.latency_ms[in_s], 100 * (1 - policy.latency_share)))
        limit = max(policy.latency_ratio * p95, p95 + policy.latency_margin_ms)
        slow_s[in_s] = _over_p95(stable.latency_ms[in_s], p95, policy.latency_share)
        slow_c[in_c] = canary.latency_ms[in_c] > limit
        thresholds.append({"stratum": k % n_stages + 1, "probes": k >= n_stages, "stable_p95_ms": round(p95, 2),
                           "limit_ms": round(limit, 2)})
    return slow_s, slow_c, thresholds


def compare(stable: Sample, canary: Sample, policy: GatePolicy) -> tuple[list[Comparison], list[dict]]:
    """The seven comparisons, and the latency thresholds of each stratum (stage, real users or probes)."""
    alpha_rb = policy.false_rollback / len(METRICS)
    stages = int(max(stable.stratum.max(initial=0), canary.stratum.max(initial=0))) + 1
    k_c, k_s = _codes(canary, stages), _codes(stable, stages)
    served_c, served_s = ~canary.errors, ~stable.errors

    def rates(name: str, bad_c, bad_s, mask_c, mask_s, allowed: float, per_user: bool,
              tau: float | None = None, share: float = 1.0) -> Comparison:
        return compare_clustered(
            name, Clustered.of(canary.users[mask_c], k_c[mask_c], bad_c[mask_c], 2 * stages, per_user),
            Clustered.of(stable.users[mask_s], k_s[mask_s], bad_s[mask_s], 2 * stages, per_user),
            allowed=allowed, tau=tau or allowed, alpha_rollback=alpha_rb * share, alpha_promote=policy.false_promotion)

    every_c, every_s = np.ones(len(canary), bool), np.ones(len(stable), bool)
    errors, user_errors = (rates(name, canary.errors, stable.errors, every_c, every_s, policy.error_mde, per_user)
                           for name, per_user in (("error_rate", False), ("error_rate_per_user", True)))
    fallbacks, user_fallbacks = (rates(name, canary.fallbacks, stable.fallbacks, served_c, served_s, policy.fallback_mde,
                                       per_user)
                                 for name, per_user in (("fallback_rate", False), ("fallback_rate_per_user", True)))
    slow_s, slow_c, thresholds = _latency_flags(stable, canary, k_s, k_c, stages, policy)
    # allowed 0: a promotion rules out that the canary's share over its limit exceeds stable's over its own p95
    latency = rates("latency", slow_c, slow_s, served_c, served_s, 0.0, False, tau=policy.latency_share)
    typical = _typical_latency(stable, canary, k_s, k_c, stages, policy, alpha_rb)
    tier_s, tier_c, tiers = activity_tiers(stable.users, stable.synthetic, canary.users, canary.synthetic,
                                           policy.user_tiers)
    # Bonferroni over the tiers; before a promotion, a tier must rule out `tier_allowed` x error_mde among its users.
    # Not the regression that, confined to a quarter of the users, would be the allowed one over all of them (4x):
    # requests counted so far sort users by activity only roughly, so a regression confined to the lightest tenth of
    # users at the allowed +2 points over all (+20 for them) is a fifth to two fifths of the lightest tier's users and
    # +4 to +9 points per user there (measured: docs/releases.md); a 4x allowance would let it pass
    by_tier = [rates("error_rate_by_tier", canary.errors, stable.errors, tier_c == t, tier_s == t,
                     min(policy.error_mde * policy.tier_allowed, 1.0), True, share=1 / len(tiers))
               for t in range(len(tiers))]
    return [errors, fallbacks, latency, typical, user_errors, user_fallbacks,
            _family(by_tier, tiers, policy.min_users)], thresholds


def _family(by_tier: list[Comparison], tiers: list[dict], min_users: int) -> Comparison:
    """One verdict for the tiers: worse if any tier is, within once every tier rules out its allowed regression. The
    comparison shown is the failing tier's, else the least certain one's; `tier` names it."""
    # a tier speaks for a group of users, not for a few (a normal approximation over 4 users once failed an equal
    # candidate): one with fewer than `min_users` canary users, or without evidence either way (empty, as ties at a
    # cut point may leave it, or no stage in which both variants served its users) neither holds nor fails; the
    # comparison over all users still has to pass
    used = [t for t in range(len(tiers)) if by_tier[t].canary_users >= min_users
            and (by_tier[t].at_most is not None or by_tier[t].verdict == "worse")]
    if not used:
        return _Tiered(**(replace(by_tier[0], verdict="within").__dict__), tier=tiers[0])
    worst = max(used, key=lambda t: (by_tier[t].verdict == "worse", by_tier[t].at_least))
    verdicts = {by_tier[t].verdict for t in used}
    verdict = "worse" if "worse" in verdicts else "within" if verdicts == {"within"} else "unsure"
    shown = worst if verdict != "unsure" else next(t for t in used if by_tier[t].verdict != "within")
    return _Tiered(**(replace(by_tier[shown], verdict=verdict).__dict__), tier=tiers[shown])


@dataclass(frozen=True)
class _Tiered(Comparison):
    tier: dict = field(default_factory=dict)  # the tier shown: its number, requests per user and users


def _typical_latency(stable: Sample, canary: Sample, k_s: np.ndarray, k_c: np.ndarray, stages: int,
                     policy: GatePolicy, alpha_rb: float) -> Comparison:
    """Each user's geometric-mean latency (served requests), every user weighted equally, the canary's against
    stable's within strata: robust to a heavy tail and to slow and fast users, which make the p95 test noisy. The
    limit is the p95 test's, on the median: max(ratio, 1 + margin / stable's median)."""
    served_c, served_s = ~canary.errors, ~stable.errors
    real = stable.latency_ms[served_s & ~stable.synthetic]
    median = float(np.median(real)) if len(real) else math.nan
    limit = math.log(max(policy.latency_ratio, 1 + policy.latency_margin_ms / median)) if median > 0 else math.inf

    def users(sample: Sample, k: np.ndarray, served: np.ndarray) -> Clustered:
        log = np.log(np.maximum(sample.latency_ms[served], 1e-3))
        return Clustered.of(sample.users[served], k[served], log, 2 * stages, per_user=True)

    typical = compare_means("latency_typical", users(canary, k_c, served_c), users(stable, k_s, served_s),
                            limit=limit, alpha_rollback=alpha_rb, alpha_promote=policy.false_promotion,
                            tau=math.log(policy.latency_ratio))
    # a mean over a few users, each with their own latency, is not yet normal: below `min_users` it only holds
    return typical if typical.canary_users >= policy.min_users else replace(typical, verdict="unsure")


def analyze(stable: Sample, canary: Sample, evaluation: dict | None, policy: GatePolicy,
            detail: bool = True) -> Analysis:
    """The verdict and its reasons; `detail` adds the per-variant summaries to the evidence (skipped by bench/)."""
    comparisons, thresholds = compare(stable, canary, policy)
    limits = _newest_limits(thresholds)
    confidence = f"{1 - policy.false_promotion:.0%}"
    evidence = {"metrics": {c.metric: c.to_dict() for c in comparisons}, "latency_limit_ms": limits,
                "latency_thresholds": thresholds,
                "evaluation": evaluation, "policy": asdict(policy), "confidence": confidence}
    if detail:
        evidence |= {"stable": summary(stable), "canary": summary(canary)}
    worse = [_worse(c, policy, limits) for c in comparisons if c.verdict == "worse"]
    if evaluation is not None and evaluation.get("regressed"):
        worse.append(f"the candidate's evaluation run {evaluation.get('run_id')} regressed against the stable baseline")
    if worse:
        return Analysis("rollback", worse, evidence)
    bounds = [_bound(c, confidence, limits) for c in comparisons]
    holds = [b for c, b in zip(comparisons, bounds) if c.verdict != "within"]
    requests, users, probes = int((~canary.synthetic).sum()), _real_users(canary), int(canary.synthetic.sum())
    not_probes = f" (the {probes} probe requests do not count)" if probes else ""
    if requests < policy.min_requests:
        holds.append(f"only {requests} real canary requests so far{not_probes}; {policy.min_requests} are needed for "
                     "a promotion")
    if users < policy.min_users:
        holds.append(f"only {users} canary users so far{not_probes}; {policy.min_users} are needed")
    evidence["needs_traffic"] = bool(holds)  # probe traffic can help only with these
    evidence["counted"] = {"users": users, "requests": requests}  # toward the minimum (rollout/traffic.py)
    if evaluation is None:
        holds.append("the candidate has no evaluation run yet")
    if holds:
        return Analysis("hold", holds, evidence)
    return Analysis("promote", bounds + [f"evaluation run {evaluation.get('run_id')} passed"], evidence)


def _newest_limits(thresholds: list[dict]) -> dict:
    """The limit of the newest stratum, for real users and for probes: what the reasons and Slack quote."""
    return {("probes" if t["probes"] else "users"): t["limit_ms"] for t in thresholds}


def _points(x: float) -> str:
    return f"{x * 100:+.1f} points"


def _tier_name(c: Comparison) -> str:
    t = c.tier
    return f"activity tier {t['tier']} (requests per user: {t['requests_per_user']}; {t['users']} users)"


def _worse(c: Comparison, policy: GatePolicy, limits: dict) -> str:
    level = f"always-valid, {1 - policy.false_rollback / len(METRICS):.2%}"
    if c.metric == "latency_typical":
        return (f"typical latency: the canary users' geometric-mean latency at least {math.exp(c.at_least):.2f}x "
                f"stable's (estimate {math.exp(c.difference):.2f}x; limit {math.exp(c.allowed):.2f}x: max of "
                f"{policy.latency_ratio:g}x and +{policy.latency_margin_ms:g} ms over stable's median) ({level})")
    if c.metric == "error_rate_by_tier":
        return (f"error rate per user in {_tier_name(c)}: {c.canary:.2%} on the canary vs {c.stable:.2%} on stable, "
                f"at least {_points(c.at_least)} worse ({level}, over {len(policy.user_tiers) + 1} tiers)")
    if c.metric == "latency":
        limit = limits.get("users", next(iter(limits.values()), 0))
        return (f"latency: {c.canary:.1%} of canary requests above their limit ({limit:g} ms in the newest stage: "
                f"max of {policy.latency_ratio:g}x and +{policy.latency_margin_ms:g} ms over stable's p95) against "
                f"{c.stable:.1%} of stable's above its own p95: at least {_points(c.at_least)} more ({level})")
    name = c.metric.replace("_", " ")
    return (f"{name} {c.canary:.2%} on the canary vs {c.stable:.2%} on stable: at least {_points(c.at_least)} worse "
            f"({level})")


def _bound(c: Comparison, confidence: str, limits: dict) -> str:
    if c.metric == "latency_typical":
        if c.at_most is None:
            return "typical latency: no bound yet on the canary users' geometric-mean latency against stable's"
        verb = "within" if c.verdict == "within" else "not yet within"
        return (f"typical latency at most {math.exp(c.at_most):.2f}x stable's at {confidence} ({verb} the limit of "
                f"{math.exp(c.allowed):.2f}x)")
    if c.metric == "error_rate_by_tier":
        if c.verdict == "within":
            return f"error rate per user in every activity tier within its allowed regression at {confidence}"
        return (f"error rate per user in {_tier_name(c)} not yet ruled out above {_points(c.allowed)}"
                + ("" if c.at_most is None else f": at most {_points(c.at_most)} at {confidence} so far"))
    if c.metric == "latency":
        limit = limits.get("users", next(iter(limits.values()), None))
        if c.at_most is None or limit is None:
            return "latency: no bound yet on the canary's share of slow requests against stable's"
        verb = "rules out" if c.verdict == "within" else "does not yet rule out"
        return (f"latency: the canary's share above its limit ({limit:g} ms in the newest stage) at most "
                f"{_points(c.at_most)} over stable's share above its p95, at {confidence} ({verb} a canary p95 "
                "above the limit)")
    name = c.metric.replace("_", " ")
    if c.at_most is None:
        return f"{name}: no bound yet ({c.canary_requests} canary requests); {_points(c.allowed)} must be ruled out"
    if c.verdict == "within":
        return f"{name} at most {_points(c.at_most)} at {confidence} (allowed {_points(c.allowed)})"
    return f"{name} not yet ruled out above {_points(c.allowed)}: at most {_points(c.at_most)} at {confidence} so far"
