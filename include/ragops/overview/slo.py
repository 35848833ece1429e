"""The service level of the last 24 hours from the request events, hour by hour, and the health probes' view."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from ragops.answer.fallbacks import ALL as FALLBACK_CODES
from ragops.config import Settings
from ragops.monitoring.aggregate import load_events, summarize
from ragops.monitoring.review import check_slos, health_summary
from ragops.overview.moments import iso, utc
from ragops.registry import Registry
from ragops.registry.models import ComponentState

WINDOW = timedelta(hours=24)


def _rates(figures: dict) -> dict[str, float]:
    n = figures["requests"]
    return {code: round(figures["fallbacks"].get(code, 0) / n, 4) if n else 0.0 for code in FALLBACK_CODES}


def _hourly(events: list[dict], start: datetime, end: datetime) -> list[dict]:
    first = start.replace(minute=0, second=0, microsecond=0)
    groups: dict[int, list[dict]] = {}
    for e in events:
        groups.setdefault(int((utc(e["ts"]) - first) // timedelta(hours=1)), []).append(e)
    hours = []
    for i in range(int((end - first) // timedelta(hours=1)) + 1):
        figures = summarize(groups.get(i, []))
        hours.append({"hour": iso(first + i * timedelta(hours=1)), "requests": figures["requests"],
                      "p95_ms": figures["p95_ms"], "error_rate": figures["error_rate"],
                      "fallback_rates": _rates(figures)})
    return hours


def slo_status(settings: Settings, registry: Registry, now: datetime) -> dict:
    start = now - WINDOW
    events = load_events(registry, start, now)
    overall = summarize(events)
    serving = health_summary(registry, start, now).get("serving", {})
    availability = serving.get("availability")
    if availability is None and overall["requests"]:
        availability = round(1 - overall["error_rate"], 4)
    return {"start": iso(start), "end": iso(now), "requests": overall["requests"], "p50_ms": overall["p50_ms"],
            "p95_ms": overall["p95_ms"], "error_rate": overall["error_rate"], "availability": availability,
            "objectives": {"p95_ms": settings.slo_p95_latency_ms, "error_rate": settings.slo_error_rate,
                           "availability": settings.slo_availability},
            "slos": check_slos(settings, overall, availability), "fallback_rates": _rates(overall),
            "hourly": _hourly(events, start, now)}


def health_status(settings: Settings, registry: Registry, now: datetime) -> dict:
    """Each component's state as the health probe last saw it, and since when."""
    with registry.session() as s:
        states = s.scalars(select(ComponentState).order_by(ComponentState.component)).all()
        return {"components": [{"component": c.component, "ok": c.ok, "since": iso(c.since), "detail": c.detail}
                               for c in states]}
