"""Health probes of the serving app, the index, the registry and the LLM; alerts on state changes only."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone

import httpx
from sqlalchemy import text

from ragops.config import Settings, mask_urls
from ragops.registry import Registry
from ragops.registry.db import live_index_version
from ragops.registry.models import ComponentState, HealthCheck


@dataclass
class Probe:
    component: str
    ok: bool
    latency_ms: float
    detail: str = ""


@dataclass
class Transition:
    component: str
    ok: bool  # the new state
    detail: str
    since: datetime | None  # when the previous state began


@dataclass
class IndexStatus:
    ok: bool
    detail: str
    index_version: int | None = None
    chunks: int = 0


def index_status(settings: Settings, registry: Registry, index_version_id: int | None = None) -> IndexStatus:
    """Is there an index that search can be served from? The live one, or the version a release reads."""
    from ragops.index import open_store
    from ragops.registry.models import IndexVersion

    with registry.session() as s:
        version = s.get(IndexVersion, index_version_id) if index_version_id is not None else live_index_version(s)
        if version is None:
            return IndexStatus(False, "there is no index yet: run the document_refresh DAG or `ragops refresh` first")
        collection, store_version, version_id = version.collection, version.store_version, version.id
    store = open_store(settings, collection)
    try:
        store.checkout(store_version)
        count = store.count()
    finally:
        store.close()
    if count == 0:
        return IndexStatus(False, f"index version {version_id} is empty: there is nothing to search yet", version_id)
    return IndexStatus(True, f"index version {version_id}: {count} chunks", version_id, count)



def _timed(component: str, check) -> Probe:
    started = time.perf_counter()
    try:
        ok, detail = check()
    except Exception as exc:  # noqa: BLE001 - a probe reports any failure as "down", with its text
        ok, detail = False, f"{type(exc).__name__}: {mask_urls(str(exc))[:300]}"
    return Probe(component, ok, round((time.perf_counter() - started) * 1000, 2), detail)


def probe_all(settings: Settings, registry: Registry, serving_url: str | None = None) -> list[Probe]:
    def registry_check():
        with registry.session() as s:
            s.execute(text("SELECT 1"))
        return True, "reachable"

    def index_check():
        status = index_status(settings, registry)
        return status.ok, status.detail

    def serving_check():
        reply = httpx.get(serving_url.rstrip("/") + "/readyz", timeout=5.0)
        body = reply.json() if reply.headers.get("content-type", "").startswith("application/json") else {}
        return reply.status_code == 200, f"HTTP {reply.status_code} {body.get('not_ready') or ''}".strip()

    def llm_check():
        reply = httpx.get(settings.llm_base_url.rstrip("/") + "/models", timeout=5.0)
        return reply.status_code < 500, f"HTTP {reply.status_code}"

    probes = [_timed("registry", registry_check), _timed("index", index_check)]
    if serving_url:
        probes.append(_timed("serving", serving_check))
    if settings.llm_base_url:
        probes.append(_timed("llm", llm_check))
    return probes


def record(registry: Registry, probes: list[Probe], now: datetime | None = None) -> list[Transition]:
    """Store the probes; return the components whose state changed (first sight of a down component counts)."""
    now = now or datetime.now(timezone.utc)
    transitions = []
    with registry.session() as s:
        for p in probes:
            s.add(HealthCheck(ts=now, component=p.component, ok=p.ok, latency_ms=p.latency_ms, detail=p.detail))
            state = s.get(ComponentState, p.component)
            if state is None:
                s.add(ComponentState(component=p.component, ok=p.ok, since=now, detail=p.detail))
                if not p.ok:
                    transitions.append(Transition(p.component, False, p.detail, None))
            elif state.ok != p.ok:
                transitions.append(Transition(p.component, p.ok, p.detail, state.since))
                state.ok, state.since, state.detail = p.ok, now, p.detail
    return transitions
