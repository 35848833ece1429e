"""Always-valid comparisons of a canary with stable, by user, for a gate that looks again and again.

Every metric is a share of "bad" requests: an error, a fallback, a response above a latency threshold. Requests
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
    def of(cls, users: np.ndarray, bad: np.ndarray, cap: float | None = None) -> Counts:
        """`users` are small non-negative integer codes, `bad` 0/1 flags, one of each per request. `cap`: a user with
        more requests counts as `cap` of them at the same bad share, so no one caller outweighs the rest."""
        if len(users) == 0:
            return cls()
        n = np.bincount(users).astype(float)
        x = np.bincount(users, weights=bad.astype(float), minlength=len(n))
        keep = n > 0
        n, x = n[keep], x[keep]
        if cap is not None:
            scale = np.minimum(1.0, cap / n)
            n, x = n * scale, x * scale
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
    difference: float  # canary - stable (latency: the canary's share above its limit - stable's above its p95)
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


def _weights(strata: list[tuple[Counts, Counts]]) -> list[tuple[int, float]]:
    """(index, weight) of each stratum with traffic in both variants, weighted by its canary/stable harmonic size."""
    sized = [(k, c.requests * s.requests / (c.requests + s.requests)) for k, (c, s) in enumerate(strata)
             if c.requests and s.requests]
    total = sum(w for _, w in sized)
    return [(k, w / total) for k, w in sized]


def _combine(strata: list[tuple[Counts, Counts]]) -> list[tuple[float, Counts, Counts]]:
    """Weights for a stratified difference (real users, probes): each stratum by its canary/stable harmonic size."""
    return [(w, *strata[k]) for k, w in _weights(strata)]


@dataclass(frozen=True)
class Clustered:
    """One variant's requests by user and stratum, reduced to what the variance needs, so that a user seen in several
    strata (stages) is one cluster in the variance of the combined difference, not one per stratum.

    For n[u, k] requests and x[u, k] bad ones: the per-stratum totals, and the K x K sums over users of x x', x n' and
    n n' (the cross-stratum terms are what clustering adds to `Counts`)."""

    n: np.ndarray  # per stratum: requests (or, per user, users)
    x: np.ndarray  # per stratum: bad ones (or the sum of the users' own rates)
    xx: np.ndarray
    xn: np.ndarray
    nn: np.ndarray
    present: np.ndarray  # users x strata, bool
    scale: np.ndarray  # per stratum: the binomial variance of its rate is p (1 - p) * scale

    @classmethod
    def of(cls, users: np.ndarray, strata: np.ndarray, bad: np.ndarray, n_strata: int,
           per_user: bool = False) -> Clustered:
        """`per_user`: each user's rate within a stratum counts once (every user weighted equally), not each request."""
        present, dense = np.unique(users, return_inverse=True)  # codes of the users present only: a subset of a
        cell = dense.astype(np.int64) * n_strata + strata.astype(np.int64)  # large population stays small
        size = len(present) * n_strata
        n = np.bincount(cell, minlength=size).astype(float).reshape(-1, n_strata)
        x = np.bincount(cell, weights=bad.astype(float), minlength=size).astype(float).reshape(-1, n_strata)
        seen = n > 0
        if per_user:
            rates = np.divide(x, n, out=np.zeros_like(x), where=seen)
            inverse = np.divide(1.0, n, out=np.zeros_like(n), where=seen)
            n, x = seen.astype(float), rates
            scale = inverse.sum(0) / np.maximum(n.sum(0), 1) ** 2
        else:
            scale = 1 / np.maximum(n.sum(0), 1)
        return cls(n.sum(0), x.sum(0), x.T @ x, x.T @ n, n.T @ n, seen, scale)

    def counts(self, k: int) -> Counts:
        return Counts(int(self.present[:, k].sum()), float(self.n[k]), float(self.x[k]), float(self.xx[k, k]),
                      float(self.xn[k, k]), float(self.nn[k, k]))

    def users(self, ks: list[int] | None = None) -> int:
        present = self.present if ks is None else self.present[:, ks]
        return int(present.any(1).sum()) if present.size else 0

    def variance(self, weights: list[tuple[int, float]]):
        """The variance of sum_k w_k rate_k over users, as a function of the residuals' `centers` and the binomial
        `floors` it may not go below (the gate's bisection calls it often, hence the precomputed terms)."""
        ks = [k for k, _ in weights]
        users = self.users(ks)
        if users < 2:
            return lambda centers, floors: math.inf
        a = np.array([w for _, w in weights]) / self.n[ks]
        ix = np.ix_(ks, ks)
        # sum over users of (sum_k a_k (x_uk - c_k n_uk))^2 = aXXa - 2 (a'XN).(a c) + (a c)'NN(a c)
        q0, v, nn = float(a @ self.xx[ix] @ a), (a @ self.xn[ix]).tolist(), self.nn[ix].tolist()
        a, floor = a.tolist(), [w * w * self.scale[k] for k, w in weights]
        m = range(len(a))

        def variance(centers: list[float], floors: list[float]) -> float:
            ac = [a[i] * centers[i] for i in m]
            residual = q0 - 2 * sum(v[i] * ac[i] for i in m) + sum(ac[i] * nn[i][j] * ac[j] for i in m for j in m)
            cluster = users / (users - 1) * max(residual, 0.0)
            return max(cluster, sum(floor[i] * f * (1 - f) for i, f in enumerate(floors)))

        return variance


def _stratified(canary: Clustered, stable: Clustered):
    """What both stratified comparisons start from: the strata's weights, the canary's and stable's counts in the
    weighted strata, their weighted difference, and the totals (None for the strata part when no stratum has both)."""
    strata = [(canary.counts(k), stable.counts(k)) for k in range(len(canary.n))]
    weights = _weights(strata)
    totals = (_total([c for c, _ in strata]), _total([s for _, s in strata]))
    if not weights:
        return totals, None
    cs, ss = [strata[k][0] for k, _ in weights], [strata[k][1] for k, _ in weights]
    diff = sum(w * (c.rate - s.rate) for (_, w), c, s in zip(weights, cs, ss))
    return totals, (weights, cs, ss, diff)


def compare_clustered(metric: str, canary: Clustered, stable: Clustered, *, allowed: float, alpha_rollback: float,
                      alpha_promote: float, tau: float, margin: float = 0.0) -> Comparison:
    """`compare_rates` stratum by stratum (e.g. by rollout stage), with users clustered across strata.

    Comparing within strata keeps a shock shared by both variants (an incident during the 50% stage) out of the
    difference however the canary's share moved; a user who appears in both variants (stable at 10%, canary at 25%)
    adds a covariance that would shrink the variance of the difference, so leaving it out errs on the safe side."""
    (total_c, total_s), found = _stratified(canary, stable)
    users = canary.users()
    if found is None:
        return Comparison(metric, total_c.rate, total_s.rate, 0.0, -math.inf, None, allowed, int(total_c.requests),
                          users, "unsure")
    weights, cs, ss, diff = found
    pooled = [(c.bad + s.bad) / (c.requests + s.requests) for c, s in zip(cs, ss)]
    var_c, var_s = canary.variance(weights), stable.variance(weights)
    v_null = var_c([c.rate for c in cs], pooled) + var_s([s.rate for s in ss], pooled)
    v_stable = var_s([s.rate for s in ss], [s.rate for s in ss])
    at_least = diff - boundary(v_null, alpha_rollback, tau)

    def excess(u: float) -> float:
        """Positive when the data rule out a regression of `u` or more (score test at canary = stable + u)."""
        p0 = [min(max(s.rate + u, 0.0), 1.0) for s in ss]
        v = var_c(p0, p0) + v_stable
        return (u - diff) - boundary(v, alpha_promote, tau)

    verdict = "worse" if at_least > margin else "within" if excess(allowed) > 0 else "unsure"
    return Comparison(metric, total_c.rate, total_s.rate, diff, at_least, _smallest_ruled_out(excess, diff), allowed,
                      int(total_c.requests), users, verdict)


def compare_means(metric: str, canary: Clustered, stable: Clustered, *, limit: float, alpha_rollback: float,
                  alpha_promote: float, tau: float) -> Comparison:
    """Is the canary's mean value (e.g. its users' mean log latency) above stable's by more than `limit` with
    confidence (worse), or is that ruled out (within)? The stratified, user-clustered difference of
    `compare_clustered`, for a value that is not a share: no binomial floor and no score test, and both variants'
    uncertainty counted. `at_most` is the upper confidence bound of the difference at the promotion level."""
    (total_c, total_s), found = _stratified(canary, stable)
    users = canary.users()
    if found is None:
        return Comparison(metric, total_c.rate, total_s.rate, 0.0, -math.inf, None, limit, int(total_c.requests),
                          users, "unsure")
    weights, cs, ss, diff = found
    none = [0.0] * len(weights)
    v = canary.variance(weights)([c.rate for c in cs], none) + stable.variance(weights)([s.rate for s in ss], none)
    at_least, at_most = diff - boundary(v, alpha_rollback, tau), diff + boundary(v, alpha_promote, tau)
    verdict = "worse" if at_least > limit else "within" if at_most < limit else "unsure"
    return Comparison(metric, total_c.rate, total_s.rate, diff, at_least, at_most if math.isfinite(at_most) else None,
                      limit, int(total_c.requests), users, verdict)


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
