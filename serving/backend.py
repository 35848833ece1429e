"""The answer service behind the app, built once the registry can be read, and the app's readiness.

`ragops serve` starts even when the registry is away: requests get 503 store_unavailable and /readyz says why,
and the service is built by the first request or probe after the registry returns (retried at most every
RAGOPS_REGISTRY_RETRY_S). Readiness means search can be served; a language model that is down only degrades it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import Future
from typing import Callable

import anyio
import httpx

from ragops.answer.pipeline import AnswerService
from ragops.config import Settings, mask_urls
from ragops.errors import StoreUnavailable

log = logging.getLogger(__name__)


class Backend:
    def __init__(self, settings: Settings, builder: tuple[Callable[[], AnswerService], object],
                 service: AnswerService | None = None):
        self.settings = settings
        self._build, self.embedder = builder
        self.service = service
        self._lock = threading.Lock()
        self._last_try = float("-inf")
        self._error = "not tried yet"

    def get(self) -> AnswerService:
        """The service; StoreUnavailable while the registry cannot be read (blocking: call off the event loop)."""
        if self.service is not None:
            return self.service
        with self._lock:
            if self.service is None:
                if time.monotonic() - self._last_try < self.settings.registry_retry_s:
                    raise StoreUnavailable(f"the registry is unavailable: {self._error}")
                self._last_try = time.monotonic()
                try:
                    self.service = self._build()
                except StoreUnavailable as exc:
                    self._error = str(exc)[:300]
                    raise
        return self.service

    async def ready_service(self) -> AnswerService:
        if self.service is not None:
            return self.service
        return await anyio.to_thread.run_sync(self.get)


class Readiness:
    """/readyz: registry and index must serve a real search; the LLM is reported, and only degrades. Cached for
    `ttl_s`, so a flood of probes costs one search a second.

    Each check has its own total deadline, `RAGOPS_READY_CHECK_TIMEOUT_S`, so a slow dependency fails its own check
    and no other: the LLM is asked asynchronously and cancelled at its deadline (a reply that drips a byte a second
    never trips a per-read timeout), and the registry and index run on one bounded thread each (`_Worker`).

    /readyz answers anyone, so its body is the verdict and the names of the failing checks only; what failed (file
    paths, a library's source location, the database's host and port) goes to the log, once per change."""

    def __init__(self, backend: Backend, settings: Settings, ttl_s: float = 1.0):
        self.backend, self.settings, self.ttl_s = backend, settings, ttl_s
        self._cached: tuple[float, dict] | None = None
        self._logged: dict[str, str] = {}
        self._workers = {name: _Worker(name) for name in ("registry", "index")}

    async def __call__(self) -> dict:
        cached = self._cached
        if cached and time.monotonic() - cached[0] < self.ttl_s:
            return cached[1]
        result = await self.checks()
        self._log(result)
        body = {key: result[key] for key in ("ready", "not_ready", "degraded")}
        self._cached = (time.monotonic(), body)
        return body

    def _log(self, verdict: dict) -> None:
        failing = {name: mask_urls(str(check.get("error") or check)) for name, check in verdict["checks"].items()
                   if not check["ok"]}
        for name, detail in failing.items():
            if self._logged.get(name) != detail:
                state = "not ready" if name in verdict["not_ready"] else "degraded"
                log.warning("readiness: %s %s: %s", name, state, detail)
        if self._logged and not failing:
            log.info("readiness: every check passes again")
        self._logged = failing

    def forget(self) -> None:
        self._cached = None

    def check(self) -> dict:
        """The checks now, uncached and blocking (call off the event loop); the /metrics status thread reads them so."""
        return anyio.run(self.checks)

    async def checks(self) -> dict:
        """The checks now, uncached: the LLM alongside the registry and then the index, each within its deadline."""
        llm: dict = {}

        async def ask_llm() -> None:
            llm.update(await self._llm())

        async with anyio.create_task_group() as group:
            group.start_soon(ask_llm)
            stores = await self._stores()
        return _verdict(stores | llm)

    async def _stores(self) -> dict:
        try:
            service = await self._bounded("registry", self._registry)
        except StoreUnavailable as exc:
            return {"registry": {"ok": False, "error": str(exc)[:300]},
                    "index": {"ok": False, "error": "not checked: the registry is unavailable"}}
        try:
            index = await self._bounded("index", lambda: _index(service))
        except StoreUnavailable as exc:
            index = {"ok": False, "error": str(exc)[:300]}
        return {"registry": {"ok": True}, "index": index}

    async def _bounded(self, name: str, check: Callable):
        timeout_s = self.settings.ready_check_timeout_s
        try:
            return await self._workers[name].run(check, timeout_s)
        except TimeoutError:
            raise StoreUnavailable(f"the {name} check did not finish within {timeout_s:g} s") from None

    def _registry(self) -> AnswerService:
        """The service, once its registry has read a table (`SELECT 1` passed on a truncated SQLite file)."""
        service = self.backend.get()
        service.registry.probe()
        return service

    async def _llm(self) -> dict:
        if not self.settings.llm_base_url:
            return {}
        timeout_s = self.settings.ready_check_timeout_s
        try:
            with anyio.fail_after(timeout_s):  # the whole exchange, body included; httpx's timeouts are per read
                async with httpx.AsyncClient(timeout=timeout_s) as client:
                    reply = await client.get(self.settings.llm_base_url.rstrip("/") + "/models")
            return {"llm": {"ok": reply.status_code < 500, "status": reply.status_code}}
        except TimeoutError:
            return {"llm": {"ok": False, "error": f"no complete answer within {timeout_s:g} s"}}
        except httpx.HTTPError as exc:
            return {"llm": {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:200]}"}}


class _Worker:
    """One check's thread. A blocking database or file read cannot be interrupted, so a run that overruns its
    deadline keeps its thread until the read returns (the registry's statement timeout and the store's timeout end
    it), and probes meanwhile wait on that same run instead of starting another: a stuck dependency holds one
    thread, not one per probe. A daemon thread, so a stuck read never holds up the process's exit."""

    def __init__(self, name: str):
        self.name = name
        self._lock = threading.Lock()
        self._running: Future | None = None

    async def run(self, check: Callable, timeout_s: float):
        with self._lock:
            if self._running is None or self._running.done():
                self._running = Future()
                threading.Thread(target=_settle, args=(self._running, check), name=f"ragops-ready-{self.name}",
                                 daemon=True).start()
            running = self._running
        with anyio.fail_after(timeout_s):
            # shielded: a probe that gives up must not cancel the run that other probes wait on
            return await asyncio.shield(asyncio.wrap_future(running))


def _settle(future: Future, check: Callable) -> None:
    try:
        future.set_result(check())
    except BaseException as exc:  # noqa: BLE001 - handed to whoever awaits the run, which re-raises it
        future.set_exception(exc)


def _index(service: AnswerService) -> dict:
    """The live index, by a real search: it reads the data files."""
    _, release, version = service.route("readyz")
    retriever = service.retriever(version)
    hits = retriever.search("readiness probe", 1)
    index = {"ok": bool(hits), "index_version": version, "release": release.name, "chunks": retriever.store.count()}
    if not hits:
        index["error"] = "the index is empty"
    return index


def _verdict(checks: dict) -> dict:
    required = ("registry", "index")
    not_ready = [name for name in required if not checks.get(name, {}).get("ok")]
    degraded = [name for name, c in checks.items() if name not in required and not c["ok"]]
    return {"ready": not not_ready, "checks": checks, "not_ready": not_ready, "degraded": degraded}
