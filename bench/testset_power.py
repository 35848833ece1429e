"""Power of the evaluation gate's primary test against a 20% drop in hit rate, by test-set size; prints JSON.

The test is the one `ragops.evaluation.compare.compare` runs, called as the runner calls it: the hit rate, paired
per question against the baseline run (McNemar's exact test, one-sided, which is a sign test on the questions that
flipped), at the full `RAGOPS_EVAL_ALPHA`. Only the hit rate is scored, so the hit-rate test alone decides
`regressed`; the long-term reference is left out (its absolute bound of 0.10 is a second, separate guard).

The model: the baseline run hits `round(hit_rate * n)` of `n` questions (`hit_rate` as the bundled set reaches
with the default retrieval, measured by tests/include/ragops/evaluation/test_runner.py), and the candidate's
expected hit rate is 20% lower, 0.8 x hit_rate. Two ways to lose those hits bracket real degradations:

- systematic: each baseline hit is lost with probability 0.2, and no miss is gained (a page dropped from the
  index, a broken retriever: only losses, the easiest case for a paired test);
- independent: each question is a hit with probability 0.8 x hit_rate whatever the baseline did, so misses are
  gained too (a retrieval change that reshuffles which questions pass: the most discordant pairs, the hardest case).

`required_n` is the smallest n from which power stays at least 0.8 up to `--max-n` (power is not monotone in n: the
sign test's p-values are discrete). Seeded, so a run reproduces exactly.

    .venv/bin/python bench/testset_power.py [--hit-rate 0.89] [--trials 2000] [--max-n 90]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from ragops.config import Settings
from ragops.evaluation.compare import compare
from ragops.evaluation.testset import load_testset

HIT_RATE = 0.8929  # the bundled set's hit rate with the default retrieval, 75 of 84 (test_runner.py; docs/benchmarks.md)
DROP = 0.20  # relative: the candidate's expected hit rate is (1 - DROP) x HIT_RATE
POWER = 0.80
SEED = 20
MODELS = ("systematic", "independent")


def candidate_hits(model: str, baseline: np.ndarray, hit_rate: float, rng: np.random.Generator) -> np.ndarray:
    """The candidate's per-question hits, 20% fewer in expectation than the baseline run's."""
    if model == "systematic":
        return baseline * (rng.random(len(baseline)) >= DROP)
    return (rng.random(len(baseline)) < (1 - DROP) * hit_rate).astype(float)


def detected(baseline: np.ndarray, candidate: np.ndarray, alpha: float) -> bool:
    """Whether the real comparison calls the candidate a regression of the hit rate."""
    was = {f"q{i}": {"hit": float(h)} for i, h in enumerate(baseline)}
    now = {f"q{i}": {"hit": float(h)} for i, h in enumerate(candidate)}
    result = compare({"hit_rate": float(candidate.mean())}, now, {"hit_rate": float(baseline.mean())}, was, {}, alpha)
    return any(t["metric"] == "hit_rate" and t["regressed"] for t in result["tests"])


def power(model: str, n: int, hit_rate: float, alpha: float, trials: int, rng: np.random.Generator) -> float:
    baseline = np.zeros(n)
    baseline[: round(hit_rate * n)] = 1.0
    caught = sum(detected(baseline, candidate_hits(model, baseline, hit_rate, rng), alpha) for _ in range(trials))
    return caught / trials


def required_n(curve: dict[int, float]) -> int | None:
    """The smallest n from which every n scanned reaches POWER."""
    needed = None
    for n in sorted(curve, reverse=True):
        if curve[n] < POWER:
            break
        needed = n
    return needed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hit-rate", type=float, default=HIT_RATE)
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--max-n", type=int, default=90)
    args = parser.parse_args()
    alpha = Settings().eval_alpha
    bundled = len(load_testset().items)
    sizes = sorted(set(range(10, args.max_n + 1)) | {bundled})
    rng = np.random.default_rng(SEED)
    curves = {m: {n: power(m, n, args.hit_rate, alpha, args.trials, rng) for n in sizes} for m in MODELS}
    shown = sorted({12, 20, 30, 40, 50, 60, args.max_n, bundled} & set(sizes))
    print(json.dumps({
        "alpha": alpha, "baseline_hit_rate": args.hit_rate, "drop": f"{DROP:.0%} relative, to "
        f"{(1 - DROP) * args.hit_rate:.4f}", "target_power": POWER, "trials": args.trials, "seed": SEED,
        "bundled_n": bundled,
        "power_at_bundled_n": {m: curves[m][bundled] for m in MODELS},
        "required_n": {m: required_n(curves[m]) for m in MODELS},
        "power_curve": {m: {n: curves[m][n] for n in shown} for m in MODELS},
    }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
