"""Aggregates of request events over a window: counts, latency percentiles, error and fallback rates, per variant."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import select

from ragops.registry import Registry
from ragops.registry.models import RequestEvent


def load_events(registry: Registry, start: datetime, end: datetime) -> list[dict]:
    columns = (RequestEvent.ts, RequestEvent.variant, RequestEvent.latency_ms, RequestEvent.status,
               RequestEvent.fallback, RequestEvent.error, RequestEvent.endpoint)
    with registry.session() as s:
        rows = s.execute(select(*columns).where(RequestEvent.ts >= start, RequestEvent.ts < end)).all()
    return [dict(zip(("ts", "variant", "latency_ms", "status", "fallback", "error", "endpoint"), r)) for r in rows]


def summarize(events: list[dict]) -> dict:
    """Figures for one group of events. Errors are 5xx responses; 429s are counted apart as rate-limited.

    Percentiles use numpy's default (linear interpolation) over the latencies of every request in the group.
    """
    n = len(events)
    if n == 0:
        return {"requests": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "error_rate": 0.0, "errors": 0,
                "fallback_rate": 0.0, "fallbacks": {}, "rate_limited": 0, "rejected_4xx": 0}
    latencies = np.array([e["latency_ms"] for e in events], dtype=float)
    errors = sum(1 for e in events if e["status"] >= 500)
    fallbacks: dict[str, int] = {}
    for e in events:
        if e["fallback"]:
            fallbacks[e["fallback"]] = fallbacks.get(e["fallback"], 0) + 1
    return {
        "requests": n,
        "p50_ms": round(float(np.percentile(latencies, 50)), 2),
        "p95_ms": round(float(np.percentile(latencies, 95)), 2),
        "p99_ms": round(float(np.percentile(latencies, 99)), 2),
        "errors": errors,
        "error_rate": round(errors / n, 4),
        "fallback_rate": round(sum(fallbacks.values()) / n, 4),
        "fallbacks": dict(sorted(fallbacks.items())),
        "rate_limited": sum(1 for e in events if e["status"] == 429),
        "rejected_4xx": sum(1 for e in events if 400 <= e["status"] < 500 and e["status"] != 429),
    }


def by_variant(events: list[dict]) -> dict:
    groups: dict[str, list[dict]] = {}
    for e in events:
        groups.setdefault(e["variant"], []).append(e)
    return {variant: summarize(group) for variant, group in sorted(groups.items())}


def hourly(events: list[dict], start: datetime, end: datetime) -> list[dict]:
    buckets = []
    hour = start.replace(minute=0, second=0, microsecond=0)
    while hour < end:
        group = [e for e in events if hour <= _aware(e["ts"], start) < hour + timedelta(hours=1)]
        figures = summarize(group)
        buckets.append({"hour": hour, "requests": figures["requests"], "p95_ms": figures["p95_ms"] or 0.0,
                        "errors": figures["errors"]})
        hour += timedelta(hours=1)
    return buckets


def _aware(ts: datetime, like: datetime) -> datetime:
    return ts.replace(tzinfo=like.tzinfo) if ts.tzinfo is None and like.tzinfo is not None else ts
