"""How fresh the platform is, read from the registry: each pipeline's last successful run and the documents in
quarantine. The serving app exports it on /metrics, where the alert rules compare it with the configured windows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import func, select

from ragops.config import Settings
from ragops.registry import Registry
from ragops.registry.models import AuditRun, EvalRun, Quarantine, RefreshRun

PIPELINES = ("refresh", "evaluation", "audit")


@dataclass(frozen=True)
class Freshness:
    last_success: dict[str, datetime | None]  # pipeline -> when its last successful run finished; None: never
    quarantined: int  # documents the last successful refresh left in quarantine


def read_freshness(registry: Registry) -> Freshness:
    """Three small indexed reads. Every evaluation and audit that wrote its run finished; candidate evaluations
    (canary gates) do not count, since they say nothing about the live release."""
    with registry.session() as s:
        refresh = s.execute(select(RefreshRun.id, RefreshRun.finished_at).where(RefreshRun.status == "succeeded")
                            .order_by(RefreshRun.id.desc()).limit(1)).first()
        evaluation = s.scalar(select(func.max(EvalRun.created_at)).where(EvalRun.variant != "candidate"))
        audit = s.scalar(select(func.max(AuditRun.ts)))
        # A refresh quarantines every listed document that still fails validation, so the last successful run's
        # quarantine is the current one: a fixed or deleted document drops out of it.
        quarantined = s.scalar(select(func.count(func.distinct(Quarantine.uri)))
                               .where(Quarantine.refresh_run_id == refresh.id)) if refresh else 0
    return Freshness({"refresh": _utc(refresh.finished_at) if refresh else None, "evaluation": _utc(evaluation),
                      "audit": _utc(audit)}, int(quarantined or 0))


def windows_s(settings: Settings) -> dict[str, float]:
    """The configured freshness window of each pipeline, in seconds."""
    hours = {"refresh": settings.freshness_refresh_hours, "evaluation": settings.freshness_eval_hours,
             "audit": settings.freshness_audit_hours}
    return {pipeline: h * 3600.0 for pipeline, h in hours.items()}


def _utc(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; the registry stores UTC."""
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
