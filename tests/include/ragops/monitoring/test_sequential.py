"""The clustered, stratified variance against the per-stratum sufficient statistics it generalises."""

import numpy as np
import pytest

from ragops.monitoring.sequential import Clustered, Counts


def test_one_stratum_gives_the_cluster_robust_variance_of_counts():
    rng = np.random.default_rng(5)
    users, bad = rng.integers(0, 300, 2000), rng.random(2000) < 0.05
    clustered = Clustered.of(users, np.zeros(2000, int), bad, 1)
    counts = Counts.of(users, bad)
    assert clustered.counts(0) == counts
    assert clustered.variance([(0, 1.0)])([0.04], [0.04]) == pytest.approx(counts.variance(0.04, 0.04))


def test_a_user_in_two_strata_is_one_cluster():
    # 50 users, each failing in both strata or in neither: the two strata's rates move together, so the combined
    # rate varies more than if the strata were independent.
    users = np.tile(np.repeat(np.arange(50), 4), 2)
    strata = np.repeat([0, 1], 200)
    bad = np.tile(np.repeat(np.arange(50) < 5, 4), 2)
    weights = [(0, 0.5), (1, 0.5)]
    together = Clustered.of(users, strata, bad, 2).variance(weights)([0.1, 0.1], [0.1, 0.1])
    apart = Clustered.of(users + 1000 * strata, strata, bad, 2).variance(weights)([0.1, 0.1], [0.1, 0.1])
    assert together == pytest.approx(2 * apart, rel=0.05)


def test_per_user_rates_weight_every_user_equally():
    users = np.concatenate([np.zeros(99, int), [1]])  # a heavy user without errors, a light one with
    bad = np.concatenate([np.zeros(99, bool), [True]])
    per_user = Clustered.of(users, np.zeros(100, int), bad, 1, per_user=True).counts(0)
    assert per_user.users == 2 and per_user.rate == pytest.approx(0.5)
    assert Clustered.of(users, np.zeros(100, int), bad, 1).counts(0).rate == pytest.approx(0.01)
