"""Aggregates of request events over a window: counts, latency percentiles, error and fallback rates, per variant.

Latency is the latency of answers: requests that got none (a 4xx: refused, or a client that left mid-stream) are
counted, each kind as its own figure, and left out of the percentiles by `served_status`, the rule the canary gate
(rollout/gate.py) and /metrics use too.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import select

from ragops.registry import Registry
from ragops.registry.models import RequestEvent

DISCONNECTED = 499  # the client closed the connection before the answer ended (nginx's convention; serving/streams.py)
TRUNCATED = "truncated"  # how a request event's error begins when the model did not finish the answer


def served_status(status: int) -> bool:
    """An answer (or a 5xx failing one). Every 4xx is not: refused before routing (invalid, unknown key or model,
    rate limited; recorded as variant stable) or a client that closed the connection mid-stream (499), which is
    neither an error nor an answer's latency. No answer, fallbacks included, has a 4xx status but rate_limited."""
    return not 400 <= status < 500


def load_events(registry: Registry, start: datetime, end: datetime) -> list[dict]:
    columns = (RequestEvent.ts, RequestEvent.variant, RequestEvent.latency_ms, RequestEvent.status,
               RequestEvent.fallback, RequestEvent.error, RequestEvent.endpoint)
    with registry.session() as s:
        rows = s.execute(select(*columns).where(RequestEvent.ts >= start, RequestEvent.ts < end)).all()
    return [dict(zip(("ts", "variant", "latency_ms", "status", "fallback", "error", "endpoint"), r)) for r in rows]


def summarize(events: list[dict]) -> dict:
    """Figures for one group of events. Errors are 5xx responses; 429s are counted apart as rate-limited, 499s as
    disconnects, other 4xx as rejected; `truncated` counts answers the model did not finish.

    Percentiles use numpy's default (linear interpolation) over the latencies of the served requests in the group
    (`served_status`); None when there are none.
    """
    n = len(events)
    latencies = np.array([e["latency_ms"] for e in events if served_status(e["status"])], dtype=float)
    errors = sum(1 for e in events if e["status"] >= 500)
    disconnects = sum(1 for e in events if e["status"] == DISCONNECTED)
    fallbacks: dict[str, int] = {}
    for e in events:
        if e["fallback"]:
            fallbacks[e["fallback"]] = fallbacks.get(e["fallback"], 0) + 1

    def percentile(q: int) -> float | None:
        return round(float(np.percentile(latencies, q)), 2) if len(latencies) else None

    return {
        "requests": n,
        "p50_ms": percentile(50),
        "p95_ms": percentile(95),
        "p99_ms": percentile(99),
        "errors": errors,
        "error_rate": round(errors / n, 4) if n else 0.0,
        "fallback_rate": round(sum(fallbacks.values()) / n, 4) if n else 0.0,
        "fallbacks": dict(sorted(fallbacks.items())),
        "rate_limited": sum(1 for e in events if e["status"] == 429),
        "rejected_4xx": sum(1 for e in events if 400 <= e["status"] < 500 and e["status"] not in (429, DISCONNECTED)),
        "disconnects": disconnects,
        "disconnect_rate": round(disconnects / n, 4) if n else 0.0,
        "truncated": sum(1 for e in events if (e["error"] or "").startswith(TRUNCATED)),
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
                        "errors": figures["errors"], "disconnects": figures["disconnects"]})
        hour += timedelta(hours=1)
    return buckets


def _aware(ts: datetime, like: datetime) -> datetime:
    return ts.replace(tzinfo=like.tzinfo) if ts.tzinfo is None and like.tzinfo is not None else ts
