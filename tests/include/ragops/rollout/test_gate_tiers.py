"""The activity tiers of the canary gate: a regression confined to light users shows in their tier, the tiers' cut
points cannot be moved by the canary, and what a tier must rule out before a promotion."""

import json

import numpy as np
import pytest

from ragops.rollout.gate import GatePolicy, analyze
from test_gate import PASSED, join, spread


def test_a_regression_of_the_light_users_is_rolled_back_by_their_activity_tier():
    # A quarter of the users send one request each and get +6 points of errors: +1.5 points over all users, which
    # the comparison over all users rules out above +2 (it would promote), while their own tier shows it.
    rng = np.random.default_rng(1)
    stable = join(spread(rng, 6000, 20, 0.01), spread(rng, 2000, 1, 0.01, offset=50_000))
    canary = join(spread(rng, 1500, 20, 0.01, offset=100_000), spread(rng, 500, 1, 0.07, offset=150_000))
    result = analyze(stable, canary, PASSED, GatePolicy())
    assert result.evidence["metrics"]["error_rate_per_user"]["verdict"] == "within"
    assert result.verdict == "rollback", result.reasons
    tier = result.evidence["metrics"]["error_rate_by_tier"]
    assert tier["verdict"] == "worse" and tier["tier"] == {"tier": 1, "requests_per_user": "1", "users": 2500}
    assert result.reasons == [next(r for r in result.reasons if r.startswith(
        "error rate per user in activity tier 1 (requests per user: 1; 2500 users)"))]
    json.dumps(result.evidence, allow_nan=False)


def test_tier_cut_points_come_from_both_variants_so_the_canary_cannot_move_them():
    from ragops.rollout.tiers import activity_tiers

    users_s, users_c = np.repeat(np.arange(8), [1, 1, 2, 2, 3, 3, 9, 9]), np.repeat(np.arange(8, 12), [1, 2, 3, 40])
    no = lambda u: np.zeros(len(u), bool)  # noqa: E731
    tier_s, tier_c, tiers = activity_tiers(users_s, no(users_s), users_c, no(users_c), (0.25, 0.5, 0.75))
    assert [t["requests_per_user"] for t in tiers] == ["1", "2", "3", "4+"]
    assert [t["users"] for t in tiers] == [3, 3, 3, 3]
    assert tier_c.tolist() == [0, 1, 1, 2, 2, 2] + [3] * 40
    probes = np.ones(len(users_c), bool)  # probe requests have no tier and no say in the cut points
    assert (activity_tiers(users_s, no(users_s), users_c, probes, (0.25, 0.5, 0.75))[1] == -1).all()


def test_a_tier_must_rule_out_twice_the_allowed_regression_among_its_own_users():
    """+3 points for the lightest quarter of the users, who make tier 1: the +8 a perfectly sorted tier would allow is
    ruled out, but the tier allowance is +4 (requests sort users only roughly), which is not, so the gate holds."""
    rng = np.random.default_rng(5)
    stable = join(spread(rng, 2400, 12, 0.01), spread(rng, 800, 2, 0.01, offset=50_000))
    canary = join(spread(rng, 600, 12, 0.01, offset=100_000), spread(rng, 200, 2, 0.04, offset=150_000))
    tier = analyze(stable, canary, PASSED, GatePolicy()).evidence["metrics"]["error_rate_by_tier"]
    assert tier["allowed"] == pytest.approx(2 * GatePolicy().error_mde) and tier["tier"]["tier"] == 1
    assert tier["verdict"] == "unsure" and 0.04 < tier["at_most"] < 0.08
    perfect = analyze(stable, canary, PASSED, GatePolicy(tier_allowed=4.0)).evidence["metrics"]["error_rate_by_tier"]
    assert perfect["verdict"] == "within"
