"""The signals and their comparison with the baseline, on hand-made answers: clustering by user, thin evidence."""

from datetime import datetime, timezone

from ragops.monitoring.quality import Answer, QualityPolicy, compare, thresholds

T0 = datetime(2026, 11, 2, tzinfo=timezone.utc)


def test_one_heavy_user_cannot_raise_a_shift_alone():
    """300 refusals from one user are one cluster: the per-user variance keeps the bound wide."""
    base = [Answer(T0, "r", "stable", f"u{i % 40}", i % 10 == 0, 1.9, 0.5) for i in range(2000)]
    now = [Answer(T0, "r", "stable", f"u{i % 40}", i % 10 == 0, 1.9, 0.5) for i in range(400)]
    now += [Answer(T0, "r", "stable", "heavy", True, None, None) for _ in range(300)]
    (refusals,) = [r for r in compare(base, now, QualityPolicy()) if r.signal == "refusal_rate"]
    assert refusals.difference > 0.3 and refusals.verdict == "steady"


def test_too_few_users_give_no_verdict():
    base = [Answer(T0, "r", "stable", f"u{i % 40}", i % 10 == 0, 1.9, 0.5) for i in range(2000)]
    now = [Answer(T0, "r", "stable", f"u{i % 5}", True, None, None) for i in range(200)]
    (refusals,) = [r for r in compare(base, now, QualityPolicy()) if r.signal == "refusal_rate"]
    assert refusals.verdict == "too_little"


def test_scores_are_reduced_to_shares_below_the_baseline_quantile():
    base = [Answer(T0, "r", "stable", f"u{i % 40}", False, 1.0 + i / 1000, 0.5) for i in range(1000)]
    assert abs(thresholds(base, 0.10)["evidence"] - 1.0999) < 1e-3
    now = [Answer(T0, "r", "stable", f"u{i % 40}", False, 0.5, 0.5) for i in range(400)]  # every answer weaker
    (evidence,) = [r for r in compare(base, now, QualityPolicy()) if r.signal == "evidence"]
    assert evidence.baseline == 0.1 and evidence.current == 1.0 and evidence.verdict == "shifted"


def test_citation_followed_is_shown_as_the_followed_share_and_alarms_on_its_decline():
    base = [Answer(T0, "r", "stable", f"u{i % 37}", False, 1.9, 0.5, "up", i % 10 < 6) for i in range(1000)]
    now = [Answer(T0, "r", "stable", f"u{i % 37}", False, 1.9, 0.5, "up", i % 10 < 2) for i in range(400)]
    (cited,) = [r for r in compare(base, now, QualityPolicy()) if r.signal == "citation_followed"]
    assert (cited.baseline, cited.current) == (0.6, 0.2) and cited.difference == 0.4 and cited.verdict == "shifted"
    (better,) = [r for r in compare(now, base, QualityPolicy()) if r.signal == "citation_followed"]
    assert better.verdict == "steady"  # one-sided: more clicks never alarm
