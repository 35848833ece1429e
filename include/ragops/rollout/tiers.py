"""Users by activity tier, so that a regression confined to some users (the light ones, say) shows in their tier.

A user's tier comes from their own number of real requests since the rollout began, in both variants together; the
cut points are quantiles over the distinct users of both variants pooled, so the canary cannot move them (a canary
that fails its users' requests does not change how many requests they send, and if it did, it would move stable's
users' tiers as much). Probes have no tier: they are the test set's questions, not users.
"""

from __future__ import annotations

import numpy as np


def activity_tiers(users_s: np.ndarray, probe_s: np.ndarray, users_c: np.ndarray, probe_c: np.ndarray,
                   quantiles: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """(stable's requests' tiers, the canary's, one description per tier); a probe request's tier is -1.

    `quantiles` are the cut points as shares of users (0.25, 0.5, 0.75: four tiers of about a quarter each). Ties
    at a cut point go to the lower tier, so with many users of one request the lightest tier may hold more than its
    share, and a tier may be empty; the number of tiers, and so the error spent on each, stays fixed."""
    real = np.concatenate([users_s[~probe_s], users_c[~probe_c]]).astype(np.int64)
    size = int(max(users_s.max(initial=-1), users_c.max(initial=-1))) + 1
    count = np.bincount(real, minlength=size)
    active = count[count > 0]
    cuts = np.quantile(active, quantiles, method="lower") if len(active) else np.zeros(len(quantiles))
    tier = np.searchsorted(cuts, count, side="left")
    tier_s = np.where(probe_s, -1, tier[users_s]) if len(users_s) else np.zeros(0, int)
    tier_c = np.where(probe_c, -1, tier[users_c]) if len(users_c) else np.zeros(0, int)
    bounds = [0, *(int(c) for c in cuts), None]
    described = []
    for t in range(len(quantiles) + 1):
        low, high = bounds[t] + 1, bounds[t + 1]
        span = f"{low}+" if high is None else (f"{low}" if high == low else f"{low}-{high}") if high >= low else "none"
        described.append({"tier": t + 1, "requests_per_user": span, "users": int(((tier == t) & (count > 0)).sum())})
    return tier_s, tier_c, described
