"""Slack for monitoring: the daily digest with its chart, SLO breach alerts, and health state changes."""

from __future__ import annotations

from ragops.config import Settings
from ragops.monitoring import health
from ragops.monitoring.review import Review
from ragops.notify import build_notifier
from ragops.notify.blocks import alert, health_transition, monitoring_digest
from ragops.notify.charts import latency_error_chart
from ragops.registry import Registry
from ragops.registry.db import require_first_refresh


def post_digest(settings: Settings, result: Review, notifier=None) -> dict:
    notifier = notifier or build_notifier(settings)
    chart = None
    if result.hourly:
        chart = str(latency_error_chart(result.hourly, settings.home / "charts" / f"monitoring-{result.end:%Y%m%d%H%M}.png",
                                        "Latency (p95) and errors per hour"))
    notifier.send(monitoring_digest(result.to_dict(), chart))
    for slo in result.breached:
        notifier.send(alert(f"SLO breached: {slo['name']}", f"{slo['actual']} against the objective {slo['objective']} "
                            f"between {result.start:%Y-%m-%d %H:%M} and {result.end:%H:%M} UTC "
                            f"({result.overall['requests']} requests)", "see the daily digest and the serving logs"))
    return {"breached": [s["name"] for s in result.breached], "anomalies": len(result.anomalies), "chart": chart}


def probe_and_alert(settings: Settings, serving_url: str | None = None, registry: Registry | None = None,
                    notifier=None) -> dict:
    """Probe every component, record it, and alert once per change of state (down, then recovered).

    Until the first refresh has succeeded an empty index and a not-ready serving app are expected, not outages:
    FirstRefreshPending is raised instead of probing (the DAG skips with that reason).
    """
    registry = registry or Registry(settings.registry_url)
    require_first_refresh(registry, "the health probe")
    notifier = notifier or build_notifier(settings)
    probes = health.probe_all(settings, registry, serving_url)
    transitions = health.record(registry, probes)
    for t in transitions:
        notifier.send(health_transition(t.component, t.ok, t.detail, t.since.isoformat() if t.since else None))
    return {"probes": {p.component: p.ok for p in probes}, "alerts": [f"{t.component}:{'up' if t.ok else 'down'}"
                                                                     for t in transitions]}
