"""docs/releases.md states the activity tiers' allowance that the gate applies."""

from ragops.rollout.gate import GatePolicy
from support import REPO


def test_the_releases_table_states_the_tier_allowance_the_gate_uses():
    policy = GatePolicy()
    row = next(line for line in (REPO / "docs" / "releases.md").read_text().splitlines()
               if line.startswith("| error rate per user by activity tier"))
    assert f"+{policy.error_mde * policy.tier_allowed * 100:g} points" in row and "+8 points" not in row
