"""The paired bootstrap that judges retrieval variants (bench/quality.py): known answers and coverage."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ragops.evaluation.paired import bonferroni, holm, paired_bootstrap


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_identical_scores_give_a_zero_interval_and_no_evidence(method):
    recall = np.random.default_rng(1).uniform(size=140)
    result = paired_bootstrap(recall, recall.copy(), method=method)
    assert (result.difference, result.low, result.high) == (0.0, 0.0, 0.0)
    assert result.p_value == 1.0 and (result.better, result.worse) == (0, 0)
    assert not result.excludes_zero


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_a_constant_shift_is_recovered_exactly(method):
    baseline = np.random.default_rng(2).uniform(size=50)
    result = paired_bootstrap(baseline, baseline + 0.1, method=method)
    assert result.difference == pytest.approx(0.1)
    assert result.low == pytest.approx(0.1) and result.high == pytest.approx(0.1)
    assert result.p_value == pytest.approx(1 / 10_001)  # only the all-same-sign flips are as extreme: none drawn
    assert result.excludes_zero and result.better == 50


def test_hits_interval_matches_the_normal_approximation():
    """20 of 100 questions gained, none lost: 0.2 +- 1.96 sqrt(0.2 x 0.8 / 100) = [0.122, 0.278]."""
    baseline = np.zeros(100, bool)
    variant = baseline.copy()
    variant[:20] = True
    result = paired_bootstrap(baseline, variant)
    assert result.difference == pytest.approx(0.2)
    assert result.low == pytest.approx(0.122, abs=0.015) and result.high == pytest.approx(0.278, abs=0.015)
    assert result.p_value < 0.001
    bca = paired_bootstrap(baseline, variant, method="bca")
    assert bca.low == pytest.approx(result.low, abs=0.02) and bca.high == pytest.approx(result.high, abs=0.02)


def test_gains_and_losses_that_cancel_are_not_significant():
    baseline = np.array([True] * 30 + [False] * 30 + [True] * 40)
    variant = np.array([False] * 30 + [True] * 30 + [True] * 40)  # 30 lost, 30 gained
    result = paired_bootstrap(baseline, variant)
    assert result.difference == 0.0 and result.low < 0 < result.high
    assert result.p_value > 0.9 and (result.better, result.worse) == (30, 30)


def test_the_same_seed_reproduces_and_another_seed_moves_only_the_last_digits():
    rng = np.random.default_rng(3)
    a, b = rng.uniform(size=140), rng.uniform(size=140)
    assert paired_bootstrap(a, b) == paired_bootstrap(a, b)
    other = paired_bootstrap(a, b, seed=4)
    assert other != paired_bootstrap(a, b)
    assert other.low == pytest.approx(paired_bootstrap(a, b).low, abs=0.01)


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_coverage_of_a_known_mean_difference(method):
    """Over 300 synthetic paired sets (n = 60, skewed differences), the 90% interval covers the truth ~90%."""
    rng = np.random.default_rng(5)
    truth, covered = 0.3, 0
    for trial in range(300):
        baseline = rng.uniform(size=60)
        variant = baseline + rng.exponential(truth, size=60)  # mean difference 0.3, skewed
        r = paired_bootstrap(baseline, variant, confidence=0.9, resamples=1_000, seed=trial, method=method)
        covered += r.low <= truth <= r.high
    assert 0.84 <= covered / 300 <= 0.95  # binomial sd at 300 trials is 0.017; small-n bootstrap runs a little low


def test_the_p_value_is_uniform_enough_under_no_difference():
    rng = np.random.default_rng(6)
    ps = [paired_bootstrap(rng.normal(size=40), rng.normal(size=40), resamples=500, seed=i).p_value
          for i in range(200)]
    assert 0.02 <= np.mean(np.array(ps) < 0.05) <= 0.09


def test_mismatched_or_empty_inputs_are_refused():
    with pytest.raises(ValueError, match="one length"):
        paired_bootstrap([1, 0, 1], [1, 0])
    with pytest.raises(ValueError, match="at least one"):
        paired_bootstrap([], [])
    with pytest.raises(ValueError, match="method"):
        paired_bootstrap([1.0], [1.0], method="basic")


def test_bonferroni_and_holm_known_answers():
    assert bonferroni(0.95, 1) == pytest.approx(0.95)
    assert bonferroni(0.95, 2) == pytest.approx(0.975)
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5] and holm([]) == []
    assert math.isclose(max(holm([0.6, 0.9])), 1.0)
