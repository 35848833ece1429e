"""The quality-drift check: the last window of answers against the accepted baseline, recorded, alerted once.

Each check (hourly, the `quality_drift` DAG, or `ragops monitor quality`) compares the window [end - W, end) per
release and variant with the baseline (monitoring/quality.py) and stores one `quality_checks` row per signal. A
signal whose test crossed its boundary at RAGOPS_QUALITY_SUSTAIN_CHECKS consecutive checks is *shifted*: /metrics
exports it (the `RagopsQualityDrift` alert) and Slack hears once when the shift starts, naming the signal, baseline
against now with the bound, and since when, and once more when it ends. Checks are keyed by their window's end, so
running one again for the same interval replaces its rows and does not alert twice.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, func, select

from ragops.config import Settings
from ragops.errors import RagopsError
from ragops.monitoring.quality import (QualityPolicy, SignalResult, baseline_release, compare, first_served,
                                       load_answers)
from ragops.notify import build_notifier
from ragops.notify.blocks import alert
from ragops.notify.slack import Message
from ragops.registry import Registry
from ragops.registry.models import QualityCheck

LABELS = {"refusal_rate": "refusal rate", "evidence": "weak-evidence share", "similarity": "weak-similarity share",
          "downvote_share": "down-vote share", "citation_followed": "citation-followed share"}
AHEAD = timedelta(minutes=5)  # clock skew between hosts a window's end may be ahead of now
RUNBOOK = ("see docs/monitoring.md#live-quality-signals: `ragops monitor quality --json` for the evidence, then "
           "`ragops gaps` for the questions behind it; a new release or a refresh is the usual cause")


@dataclass(frozen=True)
class Baseline:
    start: datetime
    end: datetime
    release: str | None  # release mode: the accepted release; trailing: None (all stable traffic)
    mode: str


def _utc(ts: datetime) -> datetime:
    """A plain aware UTC datetime: SQLite returns naive UTC, and Airflow's pendulum instants lose their zone in
    arithmetic with a timedelta."""
    if ts.tzinfo is None:
        return datetime(*ts.timetuple()[:6], ts.microsecond, tzinfo=timezone.utc)
    return datetime.fromtimestamp(ts.timestamp(), tz=timezone.utc)


def baseline_window(settings: Settings, registry: Registry, start: datetime, accepted: str | None) -> Baseline | None:
    """`release`: the first RAGOPS_QUALITY_BASELINE_DAYS days the accepted release served as stable, cut at the
    window's start; `trailing`: the same number of days just before the window. None: no baseline yet."""
    days = timedelta(days=settings.quality_baseline_days)
    if settings.quality_baseline == "trailing":
        return Baseline(start - days, start, None, "trailing")
    if accepted is None:
        return None
    first = first_served(registry, accepted, settings.quality_endpoints)
    if first is None or _utc(first) >= start:
        return None
    return Baseline(_utc(first), min(_utc(first) + days, start), accepted, "release")


def assess(settings: Settings, registry: Registry, start: datetime, end: datetime
           ) -> tuple[list[SignalResult], Baseline | None]:
    endpoints = settings.quality_endpoints
    limit = settings.quality_max_answers
    current = load_answers(registry, start, end, endpoints, limit=limit)
    base = baseline_window(settings, registry, start, baseline_release(current))
    answers = [] if base is None else load_answers(registry, base.start, base.end, endpoints, variant="stable",
                                                   limit=limit)
    if base is not None and base.release is not None:
        answers = [a for a in answers if a.release == base.release]
    # without a baseline every signal is `too_little`: recorded all the same, so that a shift of before ends
    hours = (base.end - base.start).total_seconds() / 3600 if base is not None else None
    return compare(answers, current, QualityPolicy.from_settings(settings), baseline_hours=hours,
                   current_hours=(end - start).total_seconds() / 3600), base


def _previous(session, result: SignalResult, end: datetime) -> QualityCheck | None:
    return session.execute(
        select(QualityCheck).where(QualityCheck.signal == result.signal, QualityCheck.release == result.release,
                                   QualityCheck.variant == result.variant, QualityCheck.window_end < end)
        .order_by(QualityCheck.window_end.desc()).limit(1)).scalar()


def record(registry: Registry, start: datetime, end: datetime, results: list[SignalResult], base: Baseline | None,
           sustain: int) -> list[dict]:
    """Store this check (replacing one for the same window end) and return each signal's row, with `alert`:
    `started`, `ended` or None, the change of state Slack must hear about (None when an earlier run already said it)."""
    rows = []
    with registry.session() as s:
        before = {(r.signal, r.release, r.variant): r.shifted for r in
                  s.execute(select(QualityCheck).where(QualityCheck.window_end == end)).scalars()}
        s.execute(delete(QualityCheck).where(QualityCheck.window_end == end))
        for r in results + _gone(s, results, end):
            prev = _previous(s, r, end)
            streak = (prev.streak if prev else 0) + 1 if r.crossed else 0
            since = (_utc(prev.since) if prev and prev.crossed and prev.since else start) if r.crossed else None
            shifted = streak >= sustain
            was = bool(prev and prev.shifted)
            change = "started" if shifted and not was else "ended" if was and not shifted else None
            if (r.signal, r.release, r.variant) in before and before[(r.signal, r.release, r.variant)] == shifted:
                change = None  # this window was checked before and its message already went out
            evidence = {"threshold": r.threshold, "verdict": r.verdict, "baseline_requests": r.baseline_requests,
                        "baseline_users": r.baseline_users,
                        "baseline_window": [base.start.isoformat(), base.end.isoformat()] if base else None,
                        "baseline_mode": base.mode if base else None,
                        "baseline_release": base.release if base else None}
            s.add(QualityCheck(ts=datetime.now(timezone.utc), window_start=start, window_end=end, signal=r.signal,
                               release=r.release, variant=r.variant, current=r.current, baseline=r.baseline,
                               difference=r.difference, at_least=r.at_least, requests=r.requests, users=r.users,
                               crossed=r.crossed, streak=streak, shifted=shifted, since=since, evidence=evidence))
            rows.append(asdict(r) | {"crossed": r.crossed, "streak": streak, "shifted": shifted,
                                     "since": since.isoformat() if since else None, "alert": change,
                                     "baseline_window": evidence["baseline_window"]})
    return rows


def _gone(session, results: list[SignalResult], end: datetime) -> list[SignalResult]:
    """The signals the previous check found shifted for a release and variant this window no longer serves (a canary
    rolled back, a release replaced): recorded as `absent`, so their shift ends rather than stays exported forever."""
    previous = session.execute(select(func.max(QualityCheck.window_end)).where(QualityCheck.window_end < end)).scalar()
    if previous is None:
        return []
    here = {(r.signal, r.release, r.variant) for r in results}
    shifted = session.execute(select(QualityCheck).where(QualityCheck.window_end == previous,
                                                         QualityCheck.shifted.is_(True))).scalars()
    return [SignalResult(q.signal, q.release, q.variant, None, None, 0.0, None, 0, 0, 0, 0, None, "absent")
            for q in shifted if (q.signal, q.release, q.variant) not in here]


def _share(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def message(row: dict, settings: Settings) -> Message:
    """The Slack message for a shift that started or ended."""
    label = LABELS[row["signal"]]
    where = f"release {row['release']} ({row['variant']})"
    if row["alert"] == "ended" and row["verdict"] in ("absent", "too_little"):
        why = "no longer serves users" if row["verdict"] == "absent" else \
            "has too few users in the window, or no baseline, for a verdict"
        return Message(f"Quality drift no longer measured: the {label} of {where} {why}; the shift is closed",
                       kind="report")
    if row["alert"] == "ended":
        return Message(f"Quality recovered: the {label} of {where} is back within its baseline "
                       f"({_share(row['baseline'])} then, {_share(row['current'])} now)", kind="report")
    window = row["baseline_window"] or ["?", "?"]
    limit = f" (below the baseline's {settings.quality_score_quantile:.0%} quantile, {row['threshold']:.3f})" \
        if row["threshold"] is not None else ""
    detail = (f"*{label}*{limit}: *{_share(row['baseline'])}* in the baseline ({_when(window[0])} to "
              f"{_when(window[1])} UTC, {row['baseline_requests']} answers) against *{_share(row['current'])}* in the "
              f"last {settings.quality_window_hours:g} h ({row['requests']} answers, {row['users']} users): a decline "
              f"of {row['difference'] * 100:+.1f} points, at least {_points(row['at_least'])} with "
              f"{1 - settings.quality_alpha:.0%} always-valid confidence. Shifted since {_when(row['since'])} UTC "
              f"({row['streak']} consecutive checks).")
    return alert(f"Quality drift: {label} of {where}", detail, RUNBOOK)


def _when(iso: str) -> str:
    return iso[:16].replace("T", " ")


def _points(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x * 100:+.1f} points"


def check(settings: Settings, *, end: datetime | None = None, registry: Registry | None = None,
          notifier=None) -> dict:
    """One drift check over [end - RAGOPS_QUALITY_WINDOW_HOURS, end): record it, alert on changes, return it."""
    registry = registry or Registry(settings.registry_url)
    now = datetime.now(timezone.utc)
    end = _utc(end or now)
    if end > now + AHEAD:
        raise RagopsError(f"the window's end {end.isoformat()} is in the future (now {now.isoformat()}): a check of "
                          "it would see no answers, close real shifts and hide the hourly checks from /metrics")
    start = end - timedelta(hours=settings.quality_window_hours)
    results, base = assess(settings, registry, start, end)
    rows = record(registry, start, end, results, base, settings.quality_sustain_checks)
    changes = [r for r in rows if r["alert"]]
    if changes:
        notifier = notifier or build_notifier(settings)
        for row in changes:
            notifier.send(message(row, settings))
    baseline = asdict(base) | {"start": base.start.isoformat(), "end": base.end.isoformat()} if base else None
    return {"window": [start.isoformat(), end.isoformat()], "baseline": baseline,
            "signals": rows, "shifted": [f"{r['signal']}:{r['release']}:{r['variant']}" for r in rows if r["shifted"]],
            "alerts": [f"{r['alert']}:{r['signal']}:{r['release']}:{r['variant']}" for r in changes]}


def latest(registry: Registry) -> list[dict]:
    """The newest check's rows (what /metrics exports): groups no longer served drop out with the next check."""
    with registry.session() as s:  # a check recorded ahead of the clock (a host's clock ran fast) never hides the rest
        newest = s.execute(select(func.max(QualityCheck.window_end)).where(
            QualityCheck.window_end <= datetime.now(timezone.utc) + AHEAD)).scalar()
        if newest is None:
            return []
        rows = s.execute(select(QualityCheck).where(QualityCheck.window_end == newest)).scalars().all()
        return [{"signal": r.signal, "release": r.release, "variant": r.variant, "current": r.current,
                 "baseline": r.baseline, "difference": r.difference, "shifted": r.shifted,
                 "since": _utc(r.since) if r.since else None, "window_end": _utc(r.window_end)} for r in rows]

