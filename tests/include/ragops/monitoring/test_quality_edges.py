"""The drift comparison at its edges (found holding in the attack round on issue 23): an empty window, one vote, no
baseline, windows of no length. Each gives a verdict of `too_little` or nothing to judge, never an exception."""

from datetime import datetime, timezone

from ragops.monitoring.quality import SIGNALS, Answer, QualityPolicy, compare

T0 = datetime(2026, 11, 2, tzinfo=timezone.utc)
ONE = [Answer(T0, "r", "stable", "u", False, 1.9, 0.5, "down", True)]


def test_an_empty_window_has_nothing_to_judge():
    assert compare([], [], QualityPolicy()) == []
    assert compare(ONE * 50, [], QualityPolicy(), baseline_hours=24, current_hours=1) == []


def test_one_vote_without_a_baseline_or_with_zero_length_windows_is_too_little():
    for baseline, hours in (([], 0.0), (ONE, 0.0), (ONE, 1e-9)):
        results = compare(baseline, ONE, QualityPolicy(), baseline_hours=hours, current_hours=hours)
        assert [r.signal for r in results] == list(SIGNALS)
        assert {r.verdict for r in results} == {"too_little"}
