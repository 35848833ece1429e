"""The answer service behind the app, built once the registry can be read, and the app's readiness.

`ragops serve` starts even when the registry is away: requests get 503 store_unavailable and /readyz says why,
and the service is built by the first request or probe after the registry returns (retried at most every
RAGOPS_REGISTRY_RETRY_S). Readiness means search can be served; a language model that is down only degrades it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import anyio
import httpx
from sqlalchemy import text

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

    /readyz answers anyone, so its body is the verdict and the names of the failing checks only; what failed (file
    paths, a library's source location, the database's host and port) goes to the log, once per change."""

    def __init__(self, backend: Backend, settings: Settings, ttl_s: float = 1.0):
        self.backend, self.settings, self.ttl_s = backend, settings, ttl_s
        self._cached: tuple[float, dict] | None = None
        self._logged: dict[str, str] = {}

    async def __call__(self) -> dict:
        cached = self._cached
        if cached and time.monotonic() - cached[0] < self.ttl_s:
            return cached[1]
        try:
            with anyio.fail_after(self.settings.store_timeout_s + 5):
                result = await anyio.to_thread.run_sync(self.check, abandon_on_cancel=True)
        except TimeoutError:
            result = _verdict({"registry": {"ok": False, "error": "the readiness checks did not finish in time"}})
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
        checks: dict[str, dict] = {}
        try:
            service = self.backend.get()
            with service.registry.session() as s:
                s.execute(text("SELECT 1"))
            checks["registry"] = {"ok": True}
        except StoreUnavailable as exc:
            checks["registry"] = {"ok": False, "error": str(exc)[:300]}
            checks["index"] = {"ok": False, "error": "not checked: the registry is unavailable"}
            return _verdict(checks | self._llm())
        try:
            _, release, version = service.route("readyz")
            retriever = service.retriever(version)
            hits = retriever.search("readiness probe", 1)  # the real search path reads the data files
            checks["index"] = {"ok": bool(hits), "index_version": version, "release": release.name,
                               "chunks": retriever.store.count()}
            if not hits:
                checks["index"]["error"] = "the index is empty"
        except StoreUnavailable as exc:
            checks["index"] = {"ok": False, "error": str(exc)[:300]}
        return _verdict(checks | self._llm())

    def _llm(self) -> dict:
        if not self.settings.llm_base_url:
            return {}
        try:
            reply = httpx.get(self.settings.llm_base_url.rstrip("/") + "/models", timeout=2.0)
            return {"llm": {"ok": reply.status_code < 500, "status": reply.status_code}}
        except httpx.HTTPError as exc:
            return {"llm": {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:200]}"}}


def _verdict(checks: dict) -> dict:
    required = ("registry", "index")
    not_ready = [name for name in required if not checks.get(name, {}).get("ok")]
    degraded = [name for name, c in checks.items() if name not in required and not c["ok"]]
    return {"ready": not not_ready, "checks": checks, "not_ready": not_ready, "degraded": degraded}
