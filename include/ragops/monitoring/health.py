"""Health probes of the serving app, the index, the registry and the LLM; alerts on state changes only."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone

import httpx
from sqlalchemy import text

from ragops.config import Settings
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


def _timed(component: str, check) -> Probe:
    started = time.perf_counter()
    try:
        ok, detail = check()
    except Exception as exc:  # noqa: BLE001 - a probe reports any failure as "down", with its text
        ok, detail = False, f"{type(exc).__name__}: {str(exc)[:300]}"
    return Probe(component, ok, round((time.perf_counter() - started) * 1000, 2), detail)


def probe_all(settings: Settings, registry: Registry, serving_url: str | None = None) -> list[Probe]:
    def registry_check():
        with registry.session() as s:
            s.execute(text("SELECT 1"))
        return True, "reachable"

    def index_check():
        from ragops.index import open_store

        with registry.session() as s:
            live = live_index_version(s)
        if live is None:
            return False, "no live index version"
        store = open_store(settings, live.collection)
        store.checkout(live.store_version)
        count = store.count()
        return count > 0, f"index version {live.id}: {count} chunks"

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
