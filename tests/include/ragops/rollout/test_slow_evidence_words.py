"""Slow evidence's reason in words: what it says of the share a stage holds at."""

from datetime import datetime, timedelta, timezone

from ragops.rollout.traffic import Seen, TrafficPolicy, describe, low_traffic

T0 = datetime(2026, 1, 5, 8, tzinfo=timezone.utc)
POLICY = TrafficPolicy(horizon_hours=24, max_percent=25, extension=2)


def test_a_stage_above_the_bound_is_not_said_to_have_been_raised():
    # the 50% stage was never raised (the bound is 25%): the reason must not say "at the raised share"
    unsure = ("latency_typical",)
    for hours, action in ((24, "extend_horizon"), (48, "ask_a_person")):
        low = low_traffic(Seen(400, 4000, 20, 50), 50, 100, T0, T0, T0 + timedelta(hours=hours), POLICY, unsure)
        assert low["action"] == action and "raised share" not in describe(low)
        assert "50%" in describe(low)
