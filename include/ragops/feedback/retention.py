"""Retention of what users typed: after RAGOPS_QUESTION_RETENTION_DAYS the text of questions, searched queries and
feedback comments is cleared (set to NULL); the rows stay, so counts, ratings, reasons, fallbacks and retrieval
scores remain as aggregates.

`purge` works on a cut-off the caller derives from its run (the DAG's data interval, never now()), in batches of
`batch` rows each committed on its own, so a huge table is never locked in one long transaction. Running it again
finds nothing left to clear: it is idempotent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update

from ragops.config import Settings
from ragops.registry import Registry
from ragops.registry.models import Feedback, RequestEvent

# (table, its text columns that retention clears)
TEXTS = ((RequestEvent, (RequestEvent.question, RequestEvent.query)), (Feedback, (Feedback.comment,)))


@dataclass(frozen=True)
class Purge:
    before: datetime
    events: int  # request events whose question or query was cleared (or would be, on a dry run)
    comments: int  # feedback comments cleared
    dry_run: bool

    def to_dict(self) -> dict:
        return asdict(self) | {"before": self.before.isoformat()}

    def summary_text(self) -> str:
        verb = "would clear" if self.dry_run else "cleared"
        return (f"privacy purge {verb} the text of {self.events} request events and {self.comments} feedback "
                f"comments older than {self.before:%Y-%m-%d %H:%M} UTC")


def cutoff(settings: Settings, end: datetime) -> datetime:
    """The instant before which text is cleared, for a run that ends at `end`."""
    return end - timedelta(days=settings.question_retention_days)


def _stale(model, columns, before: datetime):
    return (model.ts < before, or_(*(c.is_not(None) for c in columns)))


def purge(registry: Registry, before: datetime, *, batch: int = 1000, dry_run: bool = False) -> Purge:
    counts = []
    for model, columns in TEXTS:
        where = _stale(model, columns, before)
        if dry_run:
            with registry.session() as s:
                counts.append(s.execute(select(func.count()).select_from(model).where(*where)).scalar_one())
            continue
        cleared = 0
        while True:
            with registry.session() as s:  # one short transaction per batch
                ids = s.scalars(select(model.id).where(*where).order_by(model.id).limit(batch)).all()
                if ids:
                    s.execute(update(model).where(model.id.in_(ids)).values({c.key: None for c in columns}),
                              execution_options={"synchronize_session": False})
            cleared += len(ids)
            if len(ids) < batch:
                break
        counts.append(cleared)
    return Purge(before, counts[0], counts[1], dry_run)
