"""The registry-backed gauges of /metrics: freshness, quarantine, readiness; read off the hot path, failing soft."""

import threading
import time
from datetime import datetime, timezone

from sqlalchemy import select

from support import samples
from ragops.registry import Registry
from ragops.registry.models import RefreshRun
from serving.status import StatusCollector


def _value(metrics: dict, name: str, **labels):
    return metrics.get((name, tuple(sorted(labels.items()))))


def _render(collector: StatusCollector) -> dict:
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    registry.register(collector)
    return samples(generate_latest(registry).decode())


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_metrics_export_freshness_quarantine_and_readiness(make_client, indexed_own_corpus, corpus, embedder):
    indexed = indexed_own_corpus
    from ragops.ingest.refresh import Refresher

    (corpus / "empty.md").write_text("")
    Refresher(indexed, embedder=embedder).run()  # a second refresh, which quarantines the empty file
    client = make_client(indexed.model_copy(update={"freshness_refresh_hours": 2.0, "slo_p95_latency_ms": 800.0}))
    client.app.state.status.refresh()
    metrics = samples(client.get("/metrics").text)

    with Registry(indexed.registry_url).session() as s:
        finished = s.scalar(select(RefreshRun.finished_at).where(RefreshRun.status == "succeeded")
                            .order_by(RefreshRun.id.desc()))
    finished = finished if finished.tzinfo else finished.replace(tzinfo=timezone.utc)  # SQLite: naive UTC
    assert _value(metrics, "ragops_last_success_timestamp_seconds", pipeline="refresh") == finished.timestamp()
    assert _value(metrics, "ragops_last_success_timestamp_seconds", pipeline="evaluation") == 0  # never ran
    assert _value(metrics, "ragops_last_success_timestamp_seconds", pipeline="audit") == 0
    assert _value(metrics, "ragops_quarantined_documents") == 1
    assert _value(metrics, "ragops_freshness_window_seconds", pipeline="refresh") == 7200
    assert _value(metrics, "ragops_registry_up") == 1 and _value(metrics, "ragops_ready") == 1
    assert _value(metrics, "ragops_ready_check", check="index") == 1
    assert _value(metrics, "ragops_ready_check", check="registry") == 1
    assert _value(metrics, "ragops_slo_p95_latency_seconds") == 0.8
    assert _value(metrics, "ragops_slo_error_ratio") == indexed.slo_error_rate


def test_an_app_without_an_index_is_exported_as_not_ready(make_client, settings):
    client = make_client(settings.model_copy(update={"home": settings.home.parent / "empty-home"}))
    client.app.state.status.refresh()
    metrics = samples(client.get("/metrics").text)
    assert _value(metrics, "ragops_ready") == 0 and _value(metrics, "ragops_ready_check", check="index") == 0
    assert _value(metrics, "ragops_last_success_timestamp_seconds", pipeline="refresh") == 0
    assert _value(metrics, "ragops_registry_up") == 1


def test_a_registry_that_goes_away_keeps_the_last_values_and_says_so(settings, tmp_path):
    db = tmp_path / "registry.sqlite"
    registry = Registry(f"sqlite:///{db}")
    with registry.session() as s:
        s.add(RefreshRun(source="file:///x", status="succeeded", finished_at=_at(1_700_000_000)))
    clock = Clock()
    collector = StatusCollector(settings, lambda: registry, lambda: _verdict(registry=True), clock=clock)
    collector.refresh()
    assert _value(_render(collector), "ragops_registry_up") == 1

    registry.dispose()  # the file becomes unreadable: every new connection fails
    db.unlink()
    db.mkdir()
    clock.now += 1
    collector.refresh()
    metrics = _render(collector)
    assert _value(metrics, "ragops_last_success_timestamp_seconds", pipeline="refresh") == 1_700_000_000
    assert _value(metrics, "ragops_registry_up") == 1  # still within three intervals of the last good read
    clock.now += 3 * settings.status_metrics_interval_s
    collector.refresh()
    metrics = _render(collector)
    assert _value(metrics, "ragops_registry_up") == 0
    assert _value(metrics, "ragops_last_success_timestamp_seconds", pipeline="refresh") == 1_700_000_000


def test_a_registry_down_from_the_start_exports_no_made_up_freshness(settings, tmp_path):
    db = tmp_path / "registry.sqlite"
    registry = Registry(f"sqlite:///{db}")
    registry.dispose()
    db.unlink()
    db.mkdir()
    collector = StatusCollector(settings, lambda: registry, lambda: _verdict(registry=False))
    collector.refresh()
    metrics = _render(collector)
    assert _value(metrics, "ragops_registry_up") == 0 and _value(metrics, "ragops_ready") == 0
    assert not any(name == "ragops_last_success_timestamp_seconds" for name, _ in metrics)
    assert not any(name == "ragops_quarantined_documents" for name, _ in metrics)


def test_a_scrape_never_waits_for_a_hanging_reading(settings):
    release = threading.Event()
    entered = threading.Event()

    def hanging_readiness():
        entered.set()
        release.wait(60)
        return _verdict(registry=True, index=True)

    clock = Clock()
    registry = Registry(settings.registry_url)
    collector = StatusCollector(settings, lambda: registry, hanging_readiness, clock=clock)
    collector.start()
    try:
        assert entered.wait(30)
        metrics = _render(collector)  # returns while the reading hangs: nothing to read yet, so not ready
        assert _value(metrics, "ragops_ready") == 0 and _value(metrics, "ragops_registry_up") == 0
    finally:
        release.set()
        collector.stop()
    assert _value(_render(collector), "ragops_ready") == 1


def test_readiness_older_than_three_intervals_counts_as_not_ready(settings):
    clock = Clock()
    registry = Registry(settings.registry_url)
    collector = StatusCollector(settings, lambda: registry, lambda: _verdict(registry=True, index=True), clock=clock)
    collector.refresh()
    assert _value(_render(collector), "ragops_ready") == 1
    clock.now += 3 * settings.status_metrics_interval_s + 1  # the background reading hung since
    metrics = _render(collector)
    assert _value(metrics, "ragops_ready") == 0 and _value(metrics, "ragops_ready_check", check="index") == 0


def test_a_down_llm_degrades_but_leaves_the_replica_ready(settings):
    registry = Registry(settings.registry_url)
    collector = StatusCollector(settings, lambda: registry, lambda: _verdict(registry=True, index=True, llm=False))
    collector.refresh()
    metrics = _render(collector)
    assert _value(metrics, "ragops_ready") == 1  # as /readyz: the LLM is optional, answers fall back without it
    assert _value(metrics, "ragops_ready_check", check="llm") == 0
    assert _value(metrics, "ragops_ready_check", check="index") == 1


def test_a_registry_that_cannot_be_reached_at_all_counts_as_down(settings):
    from ragops.errors import StoreUnavailable

    def away():
        raise StoreUnavailable("the registry is unavailable: connection refused")

    collector = StatusCollector(settings, away, lambda: _verdict(registry=False, index=False))
    collector.refresh()
    metrics = _render(collector)
    assert _value(metrics, "ragops_registry_up") == 0 and _value(metrics, "ragops_ready") == 0
    assert not any(name == "ragops_last_success_timestamp_seconds" for name, _ in metrics)


def _verdict(**ok: bool) -> dict:
    """A /readyz body with these checks (registry and index decide readiness, as serving/backend.py)."""
    not_ready = [name for name in ("registry", "index") if not ok.get(name)]
    return {"ready": not not_ready, "checks": {name: {"ok": v} for name, v in ok.items()}, "not_ready": not_ready,
            "degraded": [name for name, v in ok.items() if name not in ("registry", "index") and not v]}


def _at(seconds: float):
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def test_the_thread_reads_on_start_and_stops(settings):
    calls = []
    registry = Registry(settings.registry_url)
    collector = StatusCollector(settings, lambda: registry, lambda: calls.append(1) or _verdict(registry=True))
    collector.start()
    deadline = time.monotonic() + 30
    while not calls and time.monotonic() < deadline:
        time.sleep(0.01)
    collector.stop()
    assert calls and not collector._thread.is_alive()


def test_a_rollout_short_of_traffic_is_a_gauge_until_the_gate_says_otherwise(settings):
    from ragops.registry.models import RolloutDecision, RolloutState
    from ragops.releases import create_release, ensure_default_release

    registry = Registry(settings.registry_url)
    ensure_default_release(registry)
    release = create_release(registry, "cand", None, {}, "test")
    collector = StatusCollector(settings, lambda: registry, lambda: _verdict())
    collector.refresh()
    assert not any(name == "ragops_rollout_low_traffic" for name, _ in _render(collector))  # no rollout
    with registry.session() as s:
        state = s.get(RolloutState, 1)
        state.candidate_release_id, state.candidate_percent, state.status = release.id, 25.0, "running"
        s.add(RolloutDecision(candidate_release_id=release.id, decision="hold", reason="low traffic",
                              evidence={"low_traffic": {"action": "ask_a_person", "users": 10}}))
    collector.refresh()
    assert _value(_render(collector), "ragops_rollout_low_traffic", release="cand", action="ask_a_person") == 1
    with registry.session() as s:
        s.add(RolloutDecision(candidate_release_id=release.id, decision="hold", reason="bounds", evidence={}))
    collector.refresh()
    assert not any(name == "ragops_rollout_low_traffic" for name, _ in _render(collector))
