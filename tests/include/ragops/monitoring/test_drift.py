"""The quality-drift check on scripted traffic: a steady mix stays quiet, a shifted one alerts once, sustained."""

from datetime import datetime, timedelta, timezone

import pytest

from quality_traffic import write_traffic
from ragops.monitoring import drift
from ragops.registry import Registry

T0 = datetime(2026, 11, 2, 0, 0, tzinfo=timezone.utc)  # the release first served here
NOW = T0 + timedelta(days=9)  # the check's window end: days 8-9 are the current window


class Slack:
    def __init__(self):
        self.sent = []

    def send(self, message) -> bool:
        self.sent.append(message)
        return True


@pytest.fixture
def registry(settings):
    return Registry(settings.registry_url)


def baseline(registry, **mix):
    write_traffic(registry, T0, 7 * 24, per_hour=12, seed=1, **mix)


def test_a_steady_mix_raises_no_shift(settings, registry):
    baseline(registry)
    write_traffic(registry, NOW - timedelta(days=1), 24, seed=2)
    slack = Slack()
    for hour in range(3):
        result = drift.check(settings, end=NOW + timedelta(hours=hour), registry=registry, notifier=slack)
        assert result["shifted"] == [] and slack.sent == []
    verdicts = {r["signal"]: r["verdict"] for r in result["signals"]}
    assert verdicts == dict.fromkeys(drift.LABELS, "steady")
    assert result["baseline"]["mode"] == "release" and result["baseline"]["start"] == T0.isoformat()


def test_more_refusals_fire_once_it_is_sustained_and_say_since_when(settings, registry):
    baseline(registry)
    write_traffic(registry, NOW - timedelta(days=1), 26, seed=3, refused=0.30)
    slack = Slack()
    first = drift.check(settings, end=NOW, registry=registry, notifier=slack)
    row = next(r for r in first["signals"] if r["signal"] == "refusal_rate")
    assert row["crossed"] and not row["shifted"] and slack.sent == []  # one crossing is not yet sustained
    second = drift.check(settings, end=NOW + timedelta(hours=1), registry=registry, notifier=slack)
    assert second["shifted"] == ["refusal_rate:live:stable"]
    assert second["alerts"] == ["started:refusal_rate:live:stable"]
    (message,) = slack.sent
    assert message.kind == "alert" and "refusal rate" in message.text and "release live (stable)" in message.text
    assert "10." in message.text or "9." in message.text  # the baseline share, ~10%
    assert "points" in message.text and "Shifted since 2026-11-10 00:00" in message.text
    # the same interval checked again replaces its rows and does not alert twice
    again = drift.check(settings, end=NOW + timedelta(hours=1), registry=registry, notifier=slack)
    assert again["shifted"] == ["refusal_rate:live:stable"] and again["alerts"] == [] and len(slack.sent) == 1
    latest = {r["signal"]: r for r in drift.latest(registry)}
    assert latest["refusal_rate"]["shifted"] and latest["refusal_rate"]["since"] == NOW - timedelta(days=1)
    assert not latest["downvote_share"]["shifted"]


@pytest.mark.slow
def test_on_postgresql_the_check_is_recorded_and_replaced_the_same_way(settings, postgres_url):
    """Time zones, the JSON evidence and the replace-by-window-end transaction on the production registry."""
    registry = Registry(postgres_url)
    baseline(registry)
    write_traffic(registry, NOW - timedelta(days=1), 26, seed=3, refused=0.30)
    slack = Slack()
    for _ in range(2):  # the second run of the same interval replaces the first
        drift.check(settings, end=NOW, registry=registry, notifier=slack)
    result = drift.check(settings, end=NOW + timedelta(hours=1), registry=registry, notifier=slack)
    assert result["alerts"] == ["started:refusal_rate:live:stable"] and len(slack.sent) == 1
    assert result["baseline"]["start"] == T0.isoformat()
    latest = {r["signal"]: r for r in drift.latest(registry)}
    assert latest["refusal_rate"]["since"] == NOW - timedelta(days=1) and len(latest) == 5
    registry.dispose()


def test_the_shift_ends_with_one_recovery_message(settings, registry):
    baseline(registry)
    write_traffic(registry, NOW - timedelta(days=1), 24, seed=4, down=0.45)
    slack = Slack()
    for hour in (0, 1):
        drift.check(settings, end=NOW + timedelta(hours=hour), registry=registry, notifier=slack)
    assert [m.kind for m in slack.sent] == ["alert"] and "down-vote share" in slack.sent[0].text
    later = NOW + timedelta(days=3)  # the bad day has left the window; steady traffic since
    write_traffic(registry, later - timedelta(days=1), 24, seed=5)
    result = drift.check(settings, end=later, registry=registry, notifier=slack)
    assert result["alerts"] == ["ended:downvote_share:live:stable"]
    assert slack.sent[-1].kind == "report" and "back within" in slack.sent[-1].text


def test_a_shifted_canary_that_is_rolled_back_ends_its_shift(settings, registry):
    baseline(registry)
    write_traffic(registry, NOW - timedelta(days=1), 24, seed=7)
    write_traffic(registry, NOW - timedelta(days=1), 24, seed=8, variant="canary", refused=0.35)
    slack = Slack()
    for hour in (0, 1):
        drift.check(settings, end=NOW + timedelta(hours=hour), registry=registry, notifier=slack)
    assert [m.kind for m in slack.sent] == ["alert"]
    later = NOW + timedelta(days=2)  # the canary is gone; stable goes on as before
    write_traffic(registry, later - timedelta(days=1), 24, seed=12)
    result = drift.check(settings, end=later, registry=registry, notifier=slack)
    assert result["alerts"] == ["ended:refusal_rate:live:canary"] and result["shifted"] == []
    assert "no longer serves users" in slack.sent[-1].text
    assert not any(r["shifted"] for r in drift.latest(registry))


def test_without_a_baseline_every_signal_is_too_little(settings, registry):
    write_traffic(registry, NOW - timedelta(days=1), 24, seed=13)  # the release first served inside the window
    result = drift.check(settings, end=NOW, registry=registry, notifier=Slack())
    assert result["baseline"] is None
    assert {r["verdict"] for r in result["signals"]} == {"too_little"}


def test_weaker_evidence_is_seen_against_the_baseline_quantile(settings, registry):
    baseline(registry)
    write_traffic(registry, NOW - timedelta(days=1), 24, seed=6, evidence=1.6)
    result = drift.check(settings, end=NOW, registry=registry, notifier=Slack())
    rows = {r["signal"]: r for r in result["signals"]}
    assert rows["evidence"]["crossed"] and rows["evidence"]["baseline"] == pytest.approx(0.10, abs=0.01)
    assert rows["evidence"]["current"] > 0.5 and rows["evidence"]["threshold"] is not None
    assert not rows["refusal_rate"]["crossed"]


def test_canary_and_stable_are_judged_apart_against_the_accepted_release(settings, registry):
    baseline(registry)
    write_traffic(registry, NOW - timedelta(days=1), 24, seed=7)
    write_traffic(registry, NOW - timedelta(days=1), 24, seed=8, variant="canary", refused=0.35)
    rows = drift.check(settings, end=NOW, registry=registry, notifier=Slack())["signals"]
    crossed = {(r["signal"], r["variant"]) for r in rows if r["crossed"]}
    assert crossed == {("refusal_rate", "canary")}


def test_probe_traffic_never_counts(settings, registry):
    baseline(registry)
    write_traffic(registry, NOW - timedelta(days=1), 24, seed=9)
    write_traffic(registry, NOW - timedelta(days=1), 24, seed=10, refused=0.9, synthetic=True, prefix="probe")
    rows = drift.check(settings, end=NOW, registry=registry, notifier=Slack())["signals"]
    assert not any(r["crossed"] for r in rows)


def test_the_trailing_baseline_is_the_days_before_the_window(settings, registry):
    settings = settings.model_copy(update={"quality_baseline": "trailing", "quality_baseline_days": 2.0})
    baseline(registry)
    write_traffic(registry, NOW - timedelta(days=1), 24, seed=11)
    result = drift.check(settings, end=NOW, registry=registry, notifier=Slack())
    assert result["baseline"]["start"] == (NOW - timedelta(days=3)).isoformat()
    assert result["baseline"]["end"] == (NOW - timedelta(days=1)).isoformat()


# -- attacked after landing (docs/reliability.md, "Issues 23 and 24: attacked after landing") --------------------------
def test_one_address_flooding_refusals_pages_no_one(settings, registry):
    """Anonymous callers are one user per address: 3,000 refused questions from it (well under its rate limit over a
    day) must not raise a shift that the other 40 users do not show."""
    baseline(registry)
    write_traffic(registry, NOW - timedelta(days=1), 24, seed=14)
    write_traffic(registry, NOW - timedelta(days=1), 24, per_hour=125, users=1, seed=15, refused=1.0,
                  user_prefix="addr:203.0.113.", prefix="flood")
    slack = Slack()
    for hour in (0, 1):
        result = drift.check(settings, end=NOW + timedelta(hours=hour), registry=registry, notifier=slack)
    row = next(r for r in result["signals"] if r["signal"] == "refusal_rate")
    assert not row["crossed"] and result["shifted"] == [] and slack.sent == []
    assert row["requests"] > 23 * 125  # the answers are all reported; the flood only weighs less


def test_one_users_many_good_answers_do_not_hide_a_decline(settings, registry):
    baseline(registry)
    write_traffic(registry, NOW - timedelta(days=1), 24, seed=16, refused=0.30)
    write_traffic(registry, NOW - timedelta(days=1), 24, per_hour=125, users=1, seed=17, refused=0.0,
                  user_prefix="key:batch-", prefix="mask")
    rows = drift.check(settings, end=NOW, registry=registry, notifier=Slack())["signals"]
    assert next(r for r in rows if r["signal"] == "refusal_rate")["crossed"]


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def test_a_large_window_is_read_as_an_even_sample_of_at_most_max_answers(settings, registry, db, request):
    """Memory and time stay bounded on a large request_events table (1M rows: docs/reliability.md)."""
    settings = settings.model_copy(update={"quality_max_answers": 1000})
    if db == "postgresql":
        registry = Registry(request.getfixturevalue("postgres_url"))
        request.addfinalizer(registry.dispose)
    baseline(registry)  # 2,016 answers over 7 days
    write_traffic(registry, NOW - timedelta(days=1), 24, per_hour=60, seed=18, refused=0.30)  # 1,440
    row = next(r for r in drift.check(settings, end=NOW, registry=registry, notifier=Slack())["signals"]
               if r["signal"] == "refusal_rate")
    assert 500 <= row["baseline_requests"] <= 1000 and 500 <= row["requests"] <= 1000
    assert row["crossed"] and row["baseline"] == pytest.approx(0.10, abs=0.03)


def test_a_check_of_a_future_window_is_refused_and_never_masks_the_newest_real_one(settings, registry):
    """`ragops monitor quality --at <future>` (or a host clock set ahead) must not close a real shift in Slack nor
    become the newest check /metrics exports, which would hide every hourly check after it."""
    from ragops.errors import RagopsError
    from ragops.registry.models import QualityCheck

    baseline(registry)
    write_traffic(registry, NOW - timedelta(days=1), 26, seed=3, refused=0.30)
    slack = Slack()
    for hour in (0, 1):
        drift.check(settings, end=NOW + timedelta(hours=hour), registry=registry, notifier=slack)
    assert len(slack.sent) == 1
    future = datetime.now(timezone.utc) + timedelta(days=365)
    with pytest.raises(RagopsError, match="future"):
        drift.check(settings, end=future, registry=registry, notifier=slack)
    assert len(slack.sent) == 1
    with registry.session() as s:  # one recorded before this guard (or by a host whose clock ran ahead)
        s.add(QualityCheck(window_start=future - timedelta(days=1), window_end=future, signal="refusal_rate",
                           release="live", variant="stable", requests=0, users=0, crossed=False, streak=0,
                           shifted=False, difference=0.0, evidence={}))
    latest = {r["signal"]: r for r in drift.latest(registry)}
    assert latest["refusal_rate"]["shifted"] and latest["refusal_rate"]["window_end"] == NOW + timedelta(hours=1)
