"""The low-traffic policy on constructed counts: when the minimum is out of reach, which action, and the words."""

from datetime import datetime, timedelta, timezone

from ragops.rollout.traffic import Seen, TrafficPolicy, describe, low_traffic

T0 = datetime(2026, 1, 5, 8, tzinfo=timezone.utc)
POLICY = TrafficPolicy(horizon_hours=24, max_percent=25, extension=2)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def test_on_course_or_met_is_not_low_traffic():
    # 10 users in 2 hours project to 120 by the 24-hour horizon; 25 users meet the minimum outright.
    assert low_traffic(Seen(10, 30, 20, 50), 10, 25, T0, T0, at(2), POLICY) is None
    assert low_traffic(Seen(25, 75, 20, 50), 10, 25, T0, T0, at(30), POLICY) is None


def test_nothing_is_judged_before_a_quarter_of_the_horizon():
    # No canary user in the first hour (a quiet night): too early to call; by 6 hours none is still none.
    assert low_traffic(Seen(0, 0, 20, 50), 10, 25, T0, T0, at(1), POLICY) is None
    assert low_traffic(Seen(0, 0, 20, 50), 10, 25, T0, T0, at(6), POLICY)["action"] == "raise_share"


def test_out_of_reach_raises_the_share_within_its_bound():
    low = low_traffic(Seen(10, 30, 20, 50), 10, 50, T0, T0, at(24), POLICY)
    assert low["action"] == "raise_share" and low["to_percent"] == 25  # the bound, not the next stage's 50%
    assert low["projected_users"] == 10 and low["users"] == 10 and low["min_users"] == 20
    assert "rises to 25%" in describe(low)
    assert low_traffic(Seen(10, 30, 20, 50), 10, 15, T0, T0, at(24), POLICY)["to_percent"] == 15  # the next stage's


def test_at_the_bound_the_horizon_extends_while_that_suffices():
    # 15 users in 20 hours: 18 by the horizon, 36 by twice it.
    low = low_traffic(Seen(15, 60, 20, 50), 25, 25, T0, T0, at(20), POLICY)
    assert low["action"] == "extend_horizon" and low["extended_projected_users"] == 36
    assert low["extended_horizon"] == at(48).isoformat() and "horizon extends to" in describe(low)
    assert low_traffic(Seen(15, 60, 20, 50), 25, 25, T0, T0, at(20),
                       TrafficPolicy(24, 25, extension=1))["action"] == "ask_a_person"  # extension turned off


def test_beyond_both_a_person_is_asked():
    low = low_traffic(Seen(10, 30, 20, 50), 25, 25, T0, at(25), at(49.5), POLICY)
    assert low["action"] == "ask_a_person" and low["projected_users"] == 10
    assert "needs a person" in describe(low) and "will not promote" in describe(low)


def test_too_few_requests_count_as_much_as_too_few_users():
    low = low_traffic(Seen(30, 40, 20, 50), 10, 25, T0, T0, at(24), POLICY)
    assert low["action"] == "raise_share" and low["projected_requests"] == 40


def test_slow_evidence_raises_the_share_once_the_minimum_is_met_and_a_metric_stays_unsure():
    unsure = ("error_rate_by_tier",)
    assert low_traffic(Seen(150, 900, 20, 50), 10, 25, T0, T0, at(5), POLICY, unsure) is None  # too early to call
    assert low_traffic(Seen(150, 900, 20, 50), 10, 25, T0, T0, at(6), POLICY) is None  # nothing unsure: no action
    low = low_traffic(Seen(150, 900, 20, 50), 10, 25, T0, T0, at(6), POLICY, unsure)
    assert low["short"] == "evidence" and low["action"] == "raise_share" and low["to_percent"] == 25
    assert low["unsure"] == ["error_rate_by_tier"] and low["held_hours"] == 6
    assert "error rate by tier" in describe(low) and "rises to 25%" in describe(low)
    assert low_traffic(Seen(150, 900, 20, 50), 10, 25, T0, T0, at(6), TrafficPolicy(24, 0, 2), unsure) is None


def test_slow_evidence_at_the_bound_holds_extends_the_horizon_and_then_asks_a_person():
    unsure = ("latency_typical",)
    assert low_traffic(Seen(400, 4000, 20, 50), 25, 50, T0, T0, at(23), POLICY, unsure) is None
    low = low_traffic(Seen(400, 4000, 20, 50), 25, 50, T0, T0, at(24), POLICY, unsure)
    assert low["action"] == "extend_horizon" and low["short"] == "evidence"
    assert low["extended_horizon"] == at(48).isoformat() and "horizon extends to" in describe(low)
    low = low_traffic(Seen(400, 4000, 20, 50), 25, 50, T0, T0, at(48), POLICY, unsure)
    assert low["action"] == "ask_a_person" and low["short"] == "evidence"
    assert "needs a person" in describe(low) and "will not promote" in describe(low)
    assert low_traffic(Seen(400, 4000, 20, 50), 25, 50, T0, T0, at(24), TrafficPolicy(24, 25, 1),
                       unsure)["action"] == "ask_a_person"  # extension turned off
