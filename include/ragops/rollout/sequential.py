"""Always-valid comparisons of a canary with stable, by user, for a gate that looks again and again.

Every metric is a share of "bad" requests: an error, a fallback, a response slower than the latency limit. Requests
are grouped by user (sticky routing puts each user's requests in one variant), and the variance of a share is the
cluster-robust one over users, never below the binomial variance: one heavy user counts as one user, not as a
thousand independent requests, so no single user can fail or pass a stage alone.

The boundary is Robbins' normal mixture, the mixture SPRT of Johari et al. ("Always valid inference", 2017): with V
the variance of an estimated difference and tau the mixing scale,

    P(at any look, |estimate - truth| > b(V)) <= alpha,   b(V) = sqrt(V (V + tau^2) / tau^2 * (2 ln(1/alpha) + ln(1 + tau^2 / V)))

so the gate may look every 15 minutes for a week and the chance of a wrong verdict stays below alpha over the whole
rollout, not per look. Each question is asked with the variance it would have under its own null hypothesis (a score
test), which keeps a stage with no errors yet from looking falsely certain.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Counts:
    """Per-user sufficient statistics of one group of requests: users, requests, bad ones, and the sums of squares."""

    users: int = 0
    requests: float = 0.0
    bad: float = 0.0
    s_bb: float = 0.0  # sum over users of bad^2
    s_bn: float = 0.0  # ... of bad * requests
    s_nn: float = 0.0  # ... of requests^2

    @classmethod
    def of(cls, users: np.ndarray, bad: np.ndarray) -> Counts:
        """`users` are small non-negative integer codes, `bad` 0/1 flags, one of each per request."""
        if len(users) == 0:
            return cls()
        n = np.bincount(users).astype(float)
        x = np.bincount(users, weights=bad.astype(float), minlength=len(n))
        keep = n > 0
        n, x = n[keep], x[keep]
        return cls(int(keep.sum()), float(n.sum()), float(x.sum()), float(x @ x), float(x @ n), float(n @ n))

    @property
    def rate(self) -> float:
        return self.bad / self.requests if self.requests else 0.0

    def variance(self, center: float, floor_rate: float) -> float:
        """Variance of the rate over users, with residuals around `center`, at least binomial at `floor_rate`."""
        if self.users < 2:
            return math.inf
        residual = max(self.s_bb - 2 * center * self.s_bn + center * center * self.s_nn, 0.0)
        cluster = self.users / (self.users - 1) * residual / self.requests ** 2
        return max(cluster, floor_rate * (1 - floor_rate) / self.requests)


def boundary(variance: float, alpha: float, tau: float) -> float:
    """Half-width of the always-valid (normal mixture) confidence sequence for an estimate with this variance."""
    if math.isinf(variance):
        return math.inf
    if variance <= 0:
        return 0.0
    t2 = tau * tau
    return math.sqrt(variance * (variance + t2) / t2 * (2 * math.log(1 / alpha) + math.log1p(t2 / variance)))


@dataclass(frozen=True)
class Comparison:
    """The verdict on one metric: `worse` (roll back), `within` (the regression is ruled out) or `unsure` (hold)."""

    metric: str
    canary: float
    stable: float
    difference: float  # canary - stable (for latency: the share of canary requests over the limit, minus 5%)
    at_least: float  # always-valid lower bound of the difference, at the rollback level
    at_most: float | None  # smallest regression the data rule out at the promotion level (None: none yet)
    allowed: float  # the largest regression that may pass (the minimum detectable effect)
    canary_requests: int
    canary_users: int
    verdict: str

    def to_dict(self) -> dict:
        """JSON-safe: a bound that does not exist yet (infinite) is None, for XCom, the registry and Slack."""
        return {k: ((round(v, 5) if math.isfinite(v) else None) if isinstance(v, float) else v)
                for k, v in self.__dict__.items()}


def _combine(strata: list[tuple[Counts, Counts]]) -> list[tuple[float, Counts, Counts]]:
    """Weights for a stratified difference (real users, probes): each stratum by its canary/stable harmonic size."""
    sized = [(c.requests * s.requests / (c.requests + s.requests), c, s) for c, s in strata
             if c.requests and s.requests]
    total = sum(w for w, _, _ in sized)
    return [(w / total, c, s) for w, c, s in sized]


def compare_rates(metric: str, strata: list[tuple[Counts, Counts]], *, allowed: float, alpha_rollback: float,
                  alpha_promote: float, tau: float, margin: float = 0.0) -> Comparison:
    """Is the canary's share of bad requests higher than stable's (roll back), or is a rise of `allowed` ruled out?"""
    parts = _combine(strata)
    canary = _total([c for _, c, _ in parts])
    stable = _total([s for _, _, s in parts])
    if not parts:
        return Comparison(metric, canary.rate, stable.rate, 0.0, -math.inf, None, allowed, int(canary.requests),
                          canary.users, "unsure")
    diff = sum(w * (c.rate - s.rate) for w, c, s in parts)
    pooled = [(c.bad + s.bad) / (c.requests + s.requests) for _, c, s in parts]
    v_null = sum(w * w * (c.variance(c.rate, p) + s.variance(s.rate, p)) for (w, c, s), p in zip(parts, pooled))
    at_least = diff - boundary(v_null, alpha_rollback, tau)

    def excess(u: float) -> float:
        """Positive when the data rule out a regression of `u` or more (score test at canary = stable + u)."""
        v = 0.0
        for w, c, s in parts:
            p0 = min(max(s.rate + u, 0.0), 1.0)
            v += w * w * (c.variance(p0, p0) + s.variance(s.rate, s.rate))
        return (u - diff) - boundary(v, alpha_promote, tau)

    verdict = "worse" if at_least > margin else "within" if excess(allowed) > 0 else "unsure"
    return Comparison(metric, canary.rate, stable.rate, diff, at_least, _smallest_ruled_out(excess, diff), allowed,
                      int(canary.requests), canary.users, verdict)


def compare_tail(metric: str, strata: list[Counts], share: float, *, alpha_rollback: float, alpha_promote: float,
                 tau: float) -> Comparison:
    """Do more than `share` of canary requests exceed the latency limit (roll back), or is that ruled out (promote)?"""
    canary = _total(strata)
    weights = [(c.requests / canary.requests, c) for c in strata if c.requests] if canary.requests else []
    if not weights:
        return Comparison(metric, 0.0, share, 0.0, -math.inf, None, 0.0, 0, 0, "unsure")
    diff = canary.rate - share
    v_null = sum(w * w * c.variance(c.rate, share) for w, c in weights)
    at_least = diff - boundary(v_null, alpha_rollback, tau)

    def excess(u: float) -> float:
        p0 = min(max(share + u, 0.0), 1.0)
        return (u - diff) - boundary(sum(w * w * c.variance(p0, p0) for w, c in weights), alpha_promote, tau)

    verdict = "worse" if at_least > 0 else "within" if excess(0.0) > 0 else "unsure"
    return Comparison(metric, canary.rate, share, diff, at_least, _smallest_ruled_out(excess, diff), 0.0,
                      int(canary.requests), canary.users, verdict)


def _total(groups: list[Counts]) -> Counts:
    return Counts(sum(g.users for g in groups), sum(g.requests for g in groups), sum(g.bad for g in groups),
                  sum(g.s_bb for g in groups), sum(g.s_bn for g in groups), sum(g.s_nn for g in groups))


def _smallest_ruled_out(excess, diff: float) -> float | None:
    """The smallest difference u that the data rule out (bisection from the estimate; `excess` grows with u)."""
    low, high = diff, 1.0
    if excess(high) <= 0:
        return None
    for _ in range(30):
        mid = (low + high) / 2
        low, high = (low, mid) if excess(mid) > 0 else (mid, high)
    return high
