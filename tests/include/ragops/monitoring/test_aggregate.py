"""Monitoring figures checked against hand-computed ones on generated events."""

from datetime import datetime, timedelta, timezone

import pytest

from ragops.monitoring.aggregate import by_variant, hourly, summarize
from ragops.monitoring.review import check_slos, find_anomalies, parse_window

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


def event(latency, status=200, fallback=None, variant="stable", error=None, minutes=0):
    return {"ts": T0 + timedelta(minutes=minutes), "variant": variant, "latency_ms": float(latency), "status": status,
            "fallback": fallback, "error": error, "endpoint": "/v1/ask"}


def generated():
    events = [event(ms) for ms in range(1, 101)]  # latencies 1..100 ms
    for i in range(5):
        events[i] = event(events[i]["latency_ms"], 503, "llm_unavailable")
    for i in range(5, 15):
        events[i] = event(events[i]["latency_ms"], 200, "no_results")
    for i in range(15, 18):
        events[i] = event(events[i]["latency_ms"], 429, "rate_limited")
    return events


def test_summary_matches_hand_computed_figures():
    s = summarize(generated())
    # linear interpolation over 1..100 without the three 429s (16, 17, 18 ms: refused, no answer's latency), 97
    # values: p50 at rank 48 = 52, p95 at rank 91.2 = 95.2, p99 at rank 95.04 = 99.04
    assert (s["requests"], s["p50_ms"], s["p95_ms"], s["p99_ms"]) == (100, 52.0, 95.2, 99.04)
    assert s["errors"] == 5 and s["error_rate"] == 0.05
    assert s["fallbacks"] == {"llm_unavailable": 5, "no_results": 10, "rate_limited": 3}
    assert s["fallback_rate"] == 0.18 and s["rate_limited"] == 3


def test_per_variant_split():
    events = [event(10), event(20), event(30, variant="canary", status=500, error="internal_error")]
    v = by_variant(events)
    assert v["stable"]["requests"] == 2 and v["stable"]["error_rate"] == 0
    assert v["canary"]["requests"] == 1 and v["canary"]["error_rate"] == 1.0


def test_hourly_buckets():
    events = [event(10, minutes=5), event(30, minutes=10, status=503), event(50, minutes=70)]
    buckets = hourly(events, T0, T0 + timedelta(hours=2))
    assert [(b["requests"], b["errors"]) for b in buckets] == [(2, 1), (1, 0)]


def test_slos(settings):
    ok = check_slos(settings, summarize([event(100)] * 50), 1.0)
    assert all(s["ok"] for s in ok)
    slow = check_slos(settings.model_copy(update={"slo_p95_latency_ms": 50}), summarize(generated()), 0.95)
    assert {s["name"] for s in slow if not s["ok"]} == {"p95 latency", "error rate", "availability"}


def test_anomalies_against_the_trailing_week():
    quiet = [[event(10)] * 99 + [event(10, 503, "llm_unavailable")] for _ in range(7)]  # 1% errors each day
    spike = [event(10)] * 90 + [event(10, 503, "llm_unavailable")] * 10  # 10% today
    kinds = {a["kind"] for a in find_anomalies(spike, quiet)}
    assert kinds == {"error_rate_spike", "fallback_rate_spike"}
    assert find_anomalies(quiet[0], quiet) == []
    novel = quiet[0][:-1] + [event(10, 500, error="KeyError")]
    [anomaly] = find_anomalies(novel, quiet)
    assert anomaly["kind"] == "new_error_kind" and anomaly["error"] == "KeyError"


def test_window_parsing():
    assert parse_window("24h") == timedelta(hours=24) and parse_window("90m") == timedelta(minutes=90)
    with pytest.raises(Exception, match="like 90m"):
        parse_window("yesterday")


def test_disconnects_and_refusals_are_counted_apart_and_left_out_of_latency():
    """Issue 25 leftover: a client that left mid-stream (499) and refused requests (4xx) were in the latency
    percentiles, as if they were answers. Now latency is over served requests only (the gate's `served_status`), and
    disconnects are a figure of their own, so a wave of them shows."""
    events = [event(ms) for ms in range(1, 101)]
    events += [event(60_000, 499, error="client_disconnected")] * 10 + [event(1, 422, error="invalid_request")] * 5
    events += [event(0.5, 429, "rate_limited")]
    s = summarize(events)
    assert (s["requests"], s["p50_ms"], s["p95_ms"], s["p99_ms"]) == (116, 50.5, 95.05, 99.01)
    assert s["disconnects"] == 10 and s["disconnect_rate"] == round(10 / 116, 4)
    assert s["rejected_4xx"] == 5 and s["rate_limited"] == 1  # a disconnect is not a refusal
    [bucket] = hourly(events, T0, T0 + timedelta(hours=1))
    assert bucket["p95_ms"] == 95.05 and bucket["disconnects"] == 10
    only_gone = summarize([event(60_000, 499, error="client_disconnected")])
    assert only_gone["p95_ms"] is None and only_gone["disconnects"] == 1


def test_slos_without_a_served_request_check_no_latency(settings):
    gone = summarize([event(60_000, 499, error="client_disconnected")] * 3)
    assert [s["name"] for s in check_slos(settings, gone, None)] == ["error rate"]


def test_the_latency_rule_is_the_gates():
    from ragops.monitoring.aggregate import served_status
    from ragops.rollout import gate

    assert gate.served_status is served_status  # one definition, imported, not copied
    assert [served_status(s) for s in (200, 499, 404, 429, 503)] == [True, False, False, False, True]


def test_truncated_answers_are_counted():
    events = [event(10), event(10, error="truncated at the model's token limit (finish_reason length)"),
              event(10, 503, "llm_unavailable", error="truncated mid-answer: the model failed")]
    assert summarize(events)["truncated"] == 2 and summarize([])["truncated"] == 0


def test_a_wave_of_disconnects_is_an_anomaly_and_in_the_digest():
    from ragops.notify.blocks import monitoring_digest

    quiet = [[event(10)] * 99 + [event(10, 499, error="client_disconnected")] for _ in range(7)]
    wave = [event(10)] * 80 + [event(10, 499, error="client_disconnected")] * 20
    [anomaly] = find_anomalies(wave, quiet)
    assert anomaly["kind"] == "disconnect_rate_spike" and "disconnect rate 20.00%" in anomaly["message"]
    review = {"overall": summarize(wave), "slos": [], "anomalies": [anomaly], "variants": {}, "health": {},
              "start": T0.isoformat(), "end": T0.isoformat()}
    digest = monitoring_digest(review)
    assert "Disconnects" in str(digest.blocks) and "20 (20.00%)" in str(digest.blocks)
