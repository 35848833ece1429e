"""Retention of what users typed: after RAGOPS_QUESTION_RETENTION_DAYS the text of questions, searched queries and
feedback comments is cleared (set to NULL); the rows stay, so counts, ratings, reasons, fallbacks and retrieval
scores remain as aggregates. The stored content-gap reports lose the example questions asked before the cut-off;
their counts, names and documents stay.

`purge` works on a cut-off the caller derives from its run (the DAG's data interval, never now()), in batches of
`batch` rows each committed on its own, so a huge table is never locked in one long transaction. Running it again
finds nothing left to clear: it is idempotent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, or_, select, update

from ragops.config import Settings
from ragops.registry import Registry
from ragops.registry.models import ContentGapReport, Feedback, RequestEvent

# (table, its text columns that retention clears)
TEXTS = ((RequestEvent, (RequestEvent.question, RequestEvent.query)), (Feedback, (Feedback.comment,)))


@dataclass(frozen=True)
class Purge:
    before: datetime
    events: int  # request events whose question or query was cleared (or would be, on a dry run)
    comments: int  # feedback comments cleared
    dry_run: bool
    reports: int = 0  # content-gap reports whose old example questions were removed

    def to_dict(self) -> dict:
        return asdict(self) | {"before": self.before.isoformat()}

    def summary_text(self) -> str:
        verb = "would clear" if self.dry_run else "cleared"
        return (f"privacy purge {verb} the text of {self.events} request events and {self.comments} feedback "
                f"comments older than {self.before:%Y-%m-%d %H:%M} UTC, and the older example questions of "
                f"{self.reports} content-gap reports")


def cutoff(settings: Settings, end: datetime | None) -> datetime:
    """The instant before which text is cleared, for a run that ends at `end`. A run dated in the future (a manual
    trigger with a logical date ahead) is treated as ending now, so text younger than the retention period stays;
    so is a run without a data interval (Airflow 3 triggers runs without a logical date)."""
    now = datetime.now(timezone.utc)
    return min(end or now, now) - timedelta(days=settings.question_retention_days)


def _stale(model, columns, before: datetime):
    return (model.ts < before, or_(*(c.is_not(None) for c in columns)))


def purge(registry: Registry, before: datetime, *, batch: int = 1000, dry_run: bool = False) -> Purge:
    if batch < 1:  # a batch of 0 would clear nothing and never finish
        raise ValueError(f"batch must be at least 1, not {batch}")
    counts = []
    for model, columns in TEXTS:
        where = _stale(model, columns, before)
        if dry_run:
            with registry.session() as s:
                counts.append(s.execute(select(func.count()).select_from(model).where(*where)).scalar_one())
            continue
        cleared, after = 0, None
        while True:
            with registry.session() as s:  # one short transaction per batch, each starting after the last one
                query = select(model.id).where(*where)
                if after is not None:
                    query = query.where(model.id > after)
                ids = s.scalars(query.order_by(model.id).limit(batch)).all()
                if ids:
                    s.execute(update(model).where(model.id.in_(ids)).values({c.key: None for c in columns}),
                              execution_options={"synchronize_session": False})
            cleared += len(ids)
            if len(ids) < batch:
                break
            after = ids[-1]
        counts.append(cleared)
    return Purge(before, counts[0], counts[1], dry_run, _reports(registry, before, dry_run))


def _older(iso: str | None, before: datetime) -> bool:
    ts = datetime.fromisoformat(iso) if iso else None
    if ts is not None and ts.tzinfo is None:  # SQLite gives the questions' times as naive UTC
        ts = ts.replace(tzinfo=timezone.utc)
    return ts is None or ts < before


def _reports(registry: Registry, before: datetime, dry_run: bool) -> int:
    """Remove from the stored content-gap reports the example questions asked before `before` (a report a month:
    a few rows, read whole)."""
    changed = 0
    with registry.session() as s:
        for row in s.scalars(select(ContentGapReport).where(ContentGapReport.period_start < before)):
            clusters = [c | {"representatives": [r for r in c.get("representatives", [])
                                                 if not _older(r.get("ts"), before)]}
                        for c in row.report.get("clusters", [])]
            if clusters != row.report.get("clusters", []):
                changed += 1
                if not dry_run:
                    row.report = dict(row.report) | {"clusters": clusters}
    return changed
