"""The daily review: figures for a window, SLO checks, and anomalies against the trailing seven days."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from ragops.config import Settings
from ragops.errors import RagopsError
from ragops.monitoring.aggregate import by_variant, hourly, load_events, summarize
from ragops.registry import Registry
from ragops.registry.models import HealthCheck

BASELINE_DAYS = 7
MIN_REQUESTS = 20  # below this many requests a rate says too little to flag


MAX_WINDOW = timedelta(days=3650)  # with the period before it (gaps' trend), still far inside the calendar


def parse_window(text: str) -> timedelta:
    match = re.fullmatch(r"\s*(\d{1,9})\s*([mhd])\s*", text or "")
    if not match:
        raise RagopsError(f"window {text!r} is not like 90m, 24h or 7d")
    value, unit = int(match.group(1)), match.group(2)
    window = {"m": timedelta(minutes=value), "h": timedelta(hours=value), "d": timedelta(days=value)}[unit]
    if not timedelta(minutes=1) <= window <= MAX_WINDOW:  # 0 stores an empty report; a huge one overflows the dates
        raise RagopsError(f"window {text!r} must be between 1 minute and {MAX_WINDOW.days} days")
    return window


@dataclass
class Review:
    start: datetime
    end: datetime
    overall: dict
    variants: dict
    slos: list[dict]
    anomalies: list[dict]
    health: dict
    hourly: list[dict] = field(default_factory=list)

    @property
    def breached(self) -> list[dict]:
        return [s for s in self.slos if not s["ok"]]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["start"], data["end"] = self.start.isoformat(), self.end.isoformat()
        data["hourly"] = [b | {"hour": b["hour"].isoformat()} for b in self.hourly]
        return data

    def summary_text(self) -> str:
        o = self.overall
        lines = [f"{self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} UTC: {o['requests']} requests, "
                 f"p50 {o['p50_ms']} ms, p95 {o['p95_ms']} ms, p99 {o['p99_ms']} ms, error rate {o['error_rate']:.2%}, "
                 f"fallback rate {o['fallback_rate']:.2%}, rate-limited {o['rate_limited']}, "
                 f"disconnects {o['disconnects']}, truncated {o['truncated']}"]
        lines += [f"SLO {s['name']}: {'ok' if s['ok'] else 'BREACHED'} ({s['actual']} vs {s['objective']})" for s in self.slos]
        lines += [f"anomaly: {a['message']}" for a in self.anomalies]
        return "\n".join(lines)


def check_slos(settings: Settings, overall: dict, availability: float | None) -> list[dict]:
    slos = []
    if overall["p95_ms"] is not None:  # None when no request was served (every one refused or left)
        slos.append({"name": "p95 latency", "objective": f"<= {settings.slo_p95_latency_ms:g} ms",
                     "actual": f"{overall['p95_ms']} ms", "ok": overall["p95_ms"] <= settings.slo_p95_latency_ms})
    if overall["requests"]:
        slos.append({"name": "error rate", "objective": f"<= {settings.slo_error_rate:.2%}",
                     "actual": f"{overall['error_rate']:.2%}", "ok": overall["error_rate"] <= settings.slo_error_rate})
    if availability is not None:
        slos.append({"name": "availability", "objective": f">= {settings.slo_availability:.2%}",
                     "actual": f"{availability:.2%}", "ok": availability >= settings.slo_availability})
    return slos


def find_anomalies(today: list[dict], baseline_days: list[list[dict]]) -> list[dict]:
    """Today's error, fallback and disconnect rates against the trailing days' mean, and error kinds never seen
    before."""
    anomalies = []
    now = summarize(today)
    days = [summarize(day) for day in baseline_days if day]
    if now["requests"] >= MIN_REQUESTS and days:
        for rate in ("error_rate", "fallback_rate", "disconnect_rate"):  # a wave of clients giving up shows too
            base = sum(d[rate] for d in days) / len(days)
            if now[rate] > max(2 * base, base + 0.02):
                anomalies.append({"kind": f"{rate}_spike", "today": now[rate], "baseline": round(base, 4),
                                  "message": f"{rate.replace('_', ' ')} {now[rate]:.2%} today against "
                                             f"{base:.2%} over the previous {len(days)} days"})
    seen = {e["error"] or e["fallback"] for day in baseline_days for e in day if e["error"] or e["fallback"]}
    new = sorted({e["error"] or e["fallback"] for e in today if (e["error"] or e["fallback"])} - seen)
    for kind in new:
        count = sum(1 for e in today if (e["error"] or e["fallback"]) == kind)
        anomalies.append({"kind": "new_error_kind", "error": kind, "count": count,
                          "message": f"{kind!r} appeared {count} times and was not seen in the previous "
                                     f"{BASELINE_DAYS} days"})
    return anomalies


def health_summary(registry: Registry, start: datetime, end: datetime) -> dict:
    with registry.session() as s:
        rows = s.execute(select(HealthCheck.component, HealthCheck.ok)
                         .where(HealthCheck.ts >= start, HealthCheck.ts < end)).all()
    out: dict[str, dict] = {}
    for component, ok in rows:
        c = out.setdefault(component, {"probes": 0, "ok": 0})
        c["probes"] += 1
        c["ok"] += int(ok)
    for c in out.values():
        c["availability"] = round(c["ok"] / c["probes"], 4)
    return out


def review(settings: Settings, since: str = "24h", *, end: datetime | None = None,
           registry: Registry | None = None) -> Review:
    registry = registry or Registry(settings.registry_url)
    end = end or datetime.now(timezone.utc)
    window = parse_window(since)
    start = end - window
    events = load_events(registry, start, end)
    baseline = [load_events(registry, start - (i + 1) * window, start - i * window) for i in range(BASELINE_DAYS)]
    overall = summarize(events)
    health = health_summary(registry, start, end)
    availability = health.get("serving", {}).get("availability")
    if availability is None and overall["requests"]:
        availability = round(1 - overall["error_rate"], 4)
    return Review(start, end, overall, by_variant(events), check_slos(settings, overall, availability),
                  find_anomalies(events, baseline), health, hourly(events, start, end) if window <= timedelta(days=2) else [])
