"""docs/releases.md states the activity tiers' allowance that the gate applies."""

from ragops.rollout.gate import GatePolicy
from support import REPO


def test_the_releases_table_states_the_tier_allowance_the_gate_uses():
    policy = GatePolicy()
    row = next(line for line in (REPO / "docs" / "releases.md").read_text().splitlines()
               if line.startswith("| error rate per user by activity tier"))
    assert f"+{policy.error_mde * policy.tier_allowed * 100:g} points" in row and "+8 points" not in row


def test_the_advice_for_a_larger_raise_also_moves_the_next_stage():
    # a raise never passes the next stage's share: with the default stages (10, 25, 50, 100) a bound of 50 leaves the
    # first stage at 25%, where the lightest tier stays unsure, so the stage never reaches the 50% one
    from datetime import datetime, timedelta, timezone

    from ragops.rollout.traffic import Seen, TrafficPolicy, low_traffic

    t0, seen, unsure = datetime(2026, 1, 5, tzinfo=timezone.utc), Seen(400, 4000, 20, 50), ("error_rate_by_tier",)
    later = t0 + timedelta(hours=6)
    assert low_traffic(seen, 25, 25, t0, t0, later, TrafficPolicy(24, 50, 2), unsure) is None  # stuck at 25%
    assert low_traffic(seen, 10, 50, t0, t0, later, TrafficPolicy(24, 50, 2), unsure)["to_percent"] == 50
    text = " ".join((REPO / "docs" / "releases.md").read_text().split())
    advice = text[text.index("raises `RAGOPS_ROLLOUT_LOW_TRAFFIC_MAX_PERCENT` to 50"):][:300]
    assert "RAGOPS_ROLLOUT_STAGES" in advice
