"""The canary rule ragops used before issue 9, kept only so bench/gate_sim.py can run it side by side.

Per stage (events since the stage began): a one-sided Fisher exact test of error and fallback rates at alpha 0.01
with practical margins (1 and 5 points), p95 latency ratio above 1.5 fails, at least 50 canary requests and the
stage's window before a promotion. Requests counted as independent. Not used by ragops itself.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import fisher_exact

MIN_REQUESTS, ALPHA, ERROR_MARGIN, FALLBACK_MARGIN, MAX_LATENCY_RATIO = 50, 0.01, 0.01, 0.05, 1.5


def worse_p_value(bad_canary: int, n_canary: int, bad_stable: int, n_stable: int) -> float:
    if n_canary == 0 or n_stable == 0:
        return 1.0
    table = [[bad_canary, n_canary - bad_canary], [bad_stable, n_stable - bad_stable]]
    return float(fisher_exact(table, alternative="greater").pvalue)


def verdict(stable, canary) -> str:
    """`stable` and `canary` are ragops.rollout.gate.Sample of the stage's requests: promote, hold or rollback."""
    nc, ns = len(canary), len(stable)
    ec, es = int(canary.errors.sum()), int(stable.errors.sum())
    fc, fs = int(canary.fallbacks.sum()), int(stable.fallbacks.sum())
    if nc and worse_p_value(ec, nc, es, ns) < ALPHA and ec / nc - es / max(1, ns) > ERROR_MARGIN:
        return "rollback"
    if nc and worse_p_value(fc, nc, fs, ns) < ALPHA and fc / nc - fs / max(1, ns) > FALLBACK_MARGIN:
        return "rollback"
    if nc >= MIN_REQUESTS and ns:
        s95 = np.percentile(stable.latency_ms, 95)
        if s95 and np.percentile(canary.latency_ms, 95) / s95 > MAX_LATENCY_RATIO:
            return "rollback"
    return "promote" if nc >= MIN_REQUESTS else "hold"
