"""`ops_summary`: index versions, the release and its gates, the evaluation trend, the SLOs, the latest audit, the
connected MCP tools' contract checks and the newest content-gap report.

Every section names the DAG that produces it, so the page can link to that DAG and its latest run. Adding a
section is one builder in SECTIONS and one renderer in the plugin. The summary
only reads: it never migrates, creates or repairs anything, so opening the page cannot change the platform.
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from typing import Callable

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from ragops.config import Settings
from ragops.errors import StoreUnavailable
from ragops.overview.moments import iso
from ragops.overview.slo import health_status, slo_status
from ragops.overview.trend import evaluation_trend
from ragops.registry import Registry
from ragops.registry.db import last_successful_refresh, live_index_version
from ragops.registry.models import (AuditFinding, AuditRun, IndexVersion, RefreshRun, Release, RolloutDecision,
                                    RolloutState)
from ragops.releases import DEFAULT_RELEASE

DECISIONS = 5
FINDINGS = 20


def _version(v: IndexVersion | None) -> dict | None:
    if v is None:
        return None
    return {"id": v.id, "collection": v.collection, "store": v.store, "store_version": v.store_version,
            "embedding_model": v.embedding_model, "documents": v.n_documents, "chunks": v.n_chunks,
            "status": v.status, "created_at": iso(v.created_at)}


def index_section(settings: Settings, registry: Registry, now: datetime) -> dict:
    with registry.session() as s:
        live = live_index_version(s)
        candidate = s.scalars(select(IndexVersion).where(IndexVersion.status == "candidate")
                              .order_by(IndexVersion.id.desc()).limit(1)).first()
        good = last_successful_refresh(s)
        last = s.scalars(select(RefreshRun).order_by(RefreshRun.id.desc()).limit(1)).first()
        quarantined = list((good.plan or {}).get("quarantined") or []) if good else []
        return {
            "live": _version(live),
            "candidate": _version(candidate),
            "quarantined": {"count": len(quarantined), "documents": quarantined[:FINDINGS]},
            "last_successful_refresh": iso(good.finished_at) if good else None,
            "last_refresh": {"id": last.id, "status": last.status, "error": last.error, "started_at": iso(last.started_at),
                             "finished_at": iso(last.finished_at)} if last else None,
        }


def release_section(settings: Settings, registry: Registry, now: datetime) -> dict:
    stages = [float(p) for p in settings.rollout_stages]
    with registry.session() as s:
        names = dict(s.execute(select(Release.id, Release.name)).all())
        state = s.get(RolloutState, 1)
        decisions = s.scalars(select(RolloutDecision).order_by(RolloutDecision.id.desc()).limit(DECISIONS)).all()
        rollout = {"stable": DEFAULT_RELEASE, "candidate": None, "percent": 0.0, "status": "idle", "stage": None,
                   "stages": stages, "stage_started_at": None, "updated_by": None}
        if state is not None:
            running = state.candidate_release_id is not None and state.status in ("running", "paused")
            rollout |= {"stable": names.get(state.stable_release_id, DEFAULT_RELEASE),
                        "candidate": names.get(state.candidate_release_id), "percent": float(state.candidate_percent),
                        "status": state.status, "stage": state.stage + 1 if running else None,
                        "stage_started_at": iso(state.stage_started_at), "updated_by": state.updated_by}
        return rollout | {"decisions": [
            {"at": iso(d.ts), "decision": d.decision, "candidate": names.get(d.candidate_release_id),
             "from_percent": d.from_percent, "to_percent": d.to_percent, "reason": d.reason, "actor": d.actor,
             "evidence": d.evidence or {}} for d in decisions]}


def audit_section(settings: Settings, registry: Registry, now: datetime) -> dict:
    with registry.session() as s:
        run = s.scalars(select(AuditRun).order_by(AuditRun.id.desc()).limit(1)).first()
        if run is None:
            return {"run": None, "findings": []}
        order = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
        findings = sorted(s.scalars(select(AuditFinding).where(AuditFinding.run_id == run.id)).all(),
                          key=lambda f: (order.get(f.severity, 5), f.kind, f.client))
        total = s.scalar(select(func.count()).select_from(AuditFinding).where(AuditFinding.run_id == run.id))
        return {"run": {"id": run.id, "at": iso(run.ts), "period_start": iso(run.period_start),
                        "period_end": iso(run.period_end), "counts": dict(run.counts or {}), "findings": total},
                "findings": [{"severity": f.severity, "kind": f.kind, "client": f.client, "message": f.message,
                              "evidence": f.evidence or {}} for f in findings[:FINDINGS]]}


def tools_section(settings: Settings, registry: Registry, now: datetime) -> dict:
    """The newest contract check of each connected MCP tool (issues 13 and 21), worst first, and each connected tool
    that was never checked; empty until a tool is connected or the DAG has run."""
    from ragops.mcp_tools.check import connected_tools, latest_checks

    order = {"changed": 0, "duplicate": 1, "missing": 2, "unpinned": 3, "down": 4, NEVER: 5, "unchanged": 6}
    checks = latest_checks(registry)
    tools = [{"tool": c.tool, "server": c.server_url, "state": c.state, "contract": c.contract,
              "latency_ms": c.latency_ms, "at": iso(c.ts), "diff": list(c.diff or [])[:10],
              "detail": (c.detail or "")[:300], "problems": _problems(c.probes)} for c in checks.values()]
    tools += [{"tool": t.tool, "server": t.url, "state": NEVER, "contract": "none", "latency_ms": None, "at": None,
               "diff": [], "detail": "connected, but no contract check has run since", "problems": []}
              for t in connected_tools(settings) if t.key not in checks]
    return {"tools": sorted(tools, key=lambda t: (order.get(t["state"], 7), t["contract"] not in ("failed", "held"),
                                                  t["tool"], t["server"]))}


NEVER = "never checked"
GAPS = 10  # clusters the page shows; the whole report is in `ragops gaps --json` and the registry


def gaps_section(settings: Settings, registry: Registry, now: datetime) -> dict:
    """The newest content-gap report (issue 23): the largest clusters of refused or down-voted questions."""
    from ragops.gaps import latest_report

    report = latest_report(registry)
    if report is None:
        return {"report": None, "clusters": []}
    data = report.to_dict()
    clusters = [c | {"request_ids": c["request_ids"][:5]} for c in data.pop("clusters")]
    return {"report": data | {"clusters": len(clusters)}, "clusters": clusters[:GAPS]}


def _problems(probes: list | None) -> list[str]:
    """What the failed probes (or sampled real calls) of a check broke, bounded for the page."""
    failed = [p for p in probes or [] if not p.get("ok")]
    return [f"{p.get('name')}: {', '.join(map(str, p.get('problems') or []))}"[:300] for p in failed[:5]]


Builder = Callable[[Settings, Registry, datetime], dict]

# (section, the DAG that produces it, builder). The page shows them in this order.
SECTIONS: tuple[tuple[str, str, Builder], ...] = (
    ("index", "document_refresh", index_section),
    ("release", "canary_rollout", release_section),
    ("evaluation", "evaluation", evaluation_trend),
    ("slo", "monitoring_review", slo_status),
    ("health", "health_probe", health_status),
    ("audit", "mcp_permission_audit", audit_section),
    ("tools", "mcp_tool_contracts", tools_section),
    ("gaps", "content_gaps", gaps_section),
)


def ops_summary(settings: Settings, *, registry: Registry | None = None, now: datetime | None = None) -> dict:
    """Everything the RAG Ops page shows, as plain JSON-ready data; raises StoreUnavailable if the registry is down."""
    now = now or datetime.now(timezone.utc)
    registry = registry or Registry(settings.registry_url, migrate=False)
    sections = {}
    try:
        for name, dag_id, build in SECTIONS:
            sections[name] = build(settings, registry, now) | {"dag_id": dag_id}
    except SQLAlchemyError as exc:
        raise StoreUnavailable(f"the registry at {registry.safe_url} cannot be read: "
                               f"{str(getattr(exc, 'orig', exc) or exc)[:300]}") from exc
    return {"generated_at": iso(now), "registry": registry.safe_url, "sections": sections}


@lru_cache(maxsize=4)
def _page_registry(url: str) -> Registry:
    return Registry(url, migrate=False)  # the page only reads; the DAGs and the CLI migrate


def page_summary(settings: Settings, *, now: datetime | None = None) -> dict:
    """`ops_summary` for a page served again and again: one read-only registry per URL, kept between requests."""
    return ops_summary(settings, registry=_page_registry(settings.registry_url), now=now)
