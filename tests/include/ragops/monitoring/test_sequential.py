"""The clustered, stratified variance against the per-stratum sufficient statistics it generalises."""

import numpy as np
import pytest

from ragops.monitoring.sequential import Clustered, Counts, compare_means


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


def test_compare_means_counts_both_variants_uncertainty():
    rng = np.random.default_rng(5)

    def users(n: int, shift: float) -> Clustered:
        ids = np.repeat(np.arange(n), 4)
        values = rng.normal(0, 0.5, n)[ids] + rng.normal(0, 0.3, len(ids)) + shift  # a level per user, and noise
        return Clustered.of(ids, np.zeros(len(ids), int), values, 1, per_user=True)

    kw = {"limit": 0.18, "alpha_rollback": 0.001, "alpha_promote": 0.05, "tau": 0.18}
    assert compare_means("m", users(400, 0.4), users(2000, 0.0), **kw).verdict == "worse"
    assert compare_means("m", users(400, 0.0), users(2000, 0.0), **kw).verdict == "within"
    few_stable = compare_means("m", users(400, 0.0), users(30, 0.0), **kw)  # stable's own uncertainty widens it
    many_stable = compare_means("m", users(400, 0.0), users(3000, 0.0), **kw)
    assert few_stable.at_most - few_stable.difference > many_stable.at_most - many_stable.difference
