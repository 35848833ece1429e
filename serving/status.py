"""Gauges for /metrics that come from the registry and the readiness checks, never read on the request path.

A background thread reads the pipelines' freshness, the quarantine, a rollout short of traffic and the readiness
checks every `RAGOPS_STATUS_METRICS_INTERVAL_S`; a scrape renders the last reading. When a read fails or hangs, the
last good values stay, `ragops_registry_up` drops to 0, and readiness more than three intervals old counts as not ready.
Readiness is /readyz's verdict: registry and index decide it; a down LLM only shows in `ragops_ready_check{check="llm"}`
(the service is degraded, not unready).

Under several uvicorn workers each worker reads for itself: the values come from the shared registry, so any
worker's reading is the service's, and these gauges are rendered beside the multiprocess counters (see metrics.py)
rather than written to per-process files that would need a merge rule.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from prometheus_client.core import GaugeMetricFamily
from sqlalchemy.exc import SQLAlchemyError

from ragops.config import Settings
from ragops.errors import RagopsError
from ragops.monitoring.drift import latest as latest_quality
from ragops.monitoring.freshness import PIPELINES, Freshness, read_freshness, windows_s
from ragops.registry import Registry
from ragops.rollout.traffic import current_low_traffic

log = logging.getLogger(__name__)
STALE_AFTER_INTERVALS = 3


class StatusCollector:
    """A prometheus_client collector. `registry()` returns the registry (or raises StoreUnavailable while it is away);
    `readiness()` returns the /readyz body, {"ready": bool, "checks": {name: {"ok": bool, ...}}, ...}."""

    def __init__(self, settings: Settings, registry: Callable[[], Registry], readiness: Callable[[], dict],
                 clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.registry = registry
        self.readiness = readiness
        self.interval_s = settings.status_metrics_interval_s
        self.clock = clock
        self._freshness: Freshness | None = None
        self._low_traffic: dict | None = None
        self._quality: list[dict] = []  # the newest quality-drift check, one row per signal, release and variant
        self._read_at: float | None = None  # clock() of the last good registry read
        self._ready = False
        self._checks: dict[str, bool] = {}
        self._checked_at: float | None = None
        self._failing = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ragops-status-metrics", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - the loop outlives any one reading; the gauges go stale meanwhile
                log.exception("reading the status for /metrics failed")
            self._stop.wait(self.interval_s)

    def refresh(self) -> None:
        """One reading: the readiness checks, then the registry."""
        verdict = self.readiness()
        self._ready = bool(verdict.get("ready"))
        self._checks = {name: bool(check.get("ok")) for name, check in verdict.get("checks", {}).items()}
        self._checked_at = self.clock()
        try:
            registry = self.registry()
            self._freshness = read_freshness(registry)
            self._low_traffic = current_low_traffic(registry)
            self._quality = latest_quality(registry)
        except (SQLAlchemyError, RagopsError) as exc:
            if not self._failing:  # once per outage, not once per interval
                log.warning("reading freshness from the registry failed; /metrics keeps the last values: %s", exc)
            self._failing = True
            return
        if self._failing:
            log.info("reading freshness from the registry works again")
        self._failing = False
        self._read_at = self.clock()

    def _recent(self, moment: float | None) -> bool:
        return moment is not None and self.clock() - moment <= STALE_AFTER_INTERVALS * self.interval_s

    def collect(self):
        yield GaugeMetricFamily("ragops_registry_up", "1 when the last read of the registry for these gauges "
                                "succeeded within three intervals", value=1.0 if self._recent(self._read_at) else 0.0)
        freshness = self._freshness
        if freshness is not None:
            last = GaugeMetricFamily("ragops_last_success_timestamp_seconds",
                                     "Unix time of each pipeline's last successful run; 0 when it never succeeded",
                                     labels=["pipeline"])
            for pipeline in PIPELINES:
                moment = freshness.last_success[pipeline]
                last.add_metric([pipeline], moment.timestamp() if moment else 0.0)
            yield last
            yield GaugeMetricFamily("ragops_quarantined_documents",
                                    "Documents left in quarantine by the last successful refresh",
                                    value=float(freshness.quarantined))
        low = GaugeMetricFamily("ragops_rollout_low_traffic", "1 while the running rollout cannot reach the gate's "
                                "minimum of users or requests in time, or its evidence stays unsure with the minimum "
                                "met, by the action taken (raise_share, extend_horizon, ask_a_person)",
                                labels=["release", "action"])
        if self._low_traffic:
            low.add_metric([self._low_traffic["release"], self._low_traffic["action"]], 1.0)
        yield low
        yield from self._quality_gauges()
        windows = GaugeMetricFamily("ragops_freshness_window_seconds",
                                    "The configured window within which each pipeline must succeed",
                                    labels=["pipeline"])
        for pipeline, seconds in windows_s(self.settings).items():
            windows.add_metric([pipeline], seconds)
        yield windows
        current = self._recent(self._checked_at)
        ready = current and self._ready
        yield GaugeMetricFamily("ragops_ready", "1 when /readyz says ready (registry and index serve a search; a down "
                                "LLM only degrades), at the last reading within three intervals",
                                value=1.0 if ready else 0.0)
        each = GaugeMetricFamily("ragops_ready_check", "Each readiness check at the last reading: 1 ok, 0 failing "
                                 "(llm at 0: degraded, still ready)", labels=["check"])
        for name, ok in sorted(self._checks.items()):
            each.add_metric([name], 1.0 if ok and current else 0.0)
        yield each
        yield GaugeMetricFamily("ragops_slo_p95_latency_seconds", "The p95 latency objective (RAGOPS_SLO_P95_LATENCY_MS)",
                                value=self.settings.slo_p95_latency_ms / 1000)
        yield GaugeMetricFamily("ragops_slo_error_ratio", "The error-rate objective (RAGOPS_SLO_ERROR_RATE)",
                                value=self.settings.slo_error_rate)

    def _quality_gauges(self):
        """The newest drift check (monitoring/drift.py): the labels are the signals and the releases and variants the
        check saw in its window, so they stay few, and a release no longer served drops out at the next check."""
        labels = ["signal", "release", "variant"]
        value = GaugeMetricFamily("ragops_quality_signal", "Live quality signal per release and variant, in the "
                                  "check's window (current) and the accepted baseline (baseline): a share",
                                  labels=labels + ["window"])
        shift = GaugeMetricFamily("ragops_quality_shift", "1 while the signal has shifted from its baseline for "
                                  "RAGOPS_QUALITY_SUSTAIN_CHECKS consecutive checks (the always-valid test)",
                                  labels=labels)
        size = GaugeMetricFamily("ragops_quality_shift_size", "The decline of the signal from its baseline, as a share "
                                 "(positive: worse)", labels=labels)
        since = GaugeMetricFamily("ragops_quality_shift_since_timestamp_seconds", "Unix time of the start of the "
                                  "first window in which the current shift crossed its boundary", labels=labels)
        checked = GaugeMetricFamily("ragops_quality_check_timestamp_seconds", "Unix time of the end of the newest "
                                    "quality-drift check's window")
        for row in self._quality:
            key = [row["signal"], row["release"], row["variant"]]
            for window in ("current", "baseline"):
                if row[window] is not None:
                    value.add_metric(key + [window], row[window])
            shift.add_metric(key, 1.0 if row["shifted"] else 0.0)
            size.add_metric(key, row["difference"] or 0.0)
            if row["shifted"] and row["since"]:
                since.add_metric(key, row["since"].timestamp())
        if self._quality:
            checked.add_metric([], self._quality[0]["window_end"].timestamp())
        yield from (value, shift, size, since, checked)
