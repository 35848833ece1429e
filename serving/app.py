"""The serving app: `create_app(settings)` builds it; `ragops serve` runs it under uvicorn."""

from __future__ import annotations

import logging
import time
import uuid
from urllib.parse import urlparse
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException

from ragops.answer import fallbacks
from ragops.answer.llm import build_chat_model
from ragops.answer.pipeline import AnswerResult, AnswerService
from ragops.answer.tools import ToolConfig
from ragops.audit.permissions import Permissions, WatchedPermissions
from ragops.config import Settings
from ragops.monitoring.events import EventWriter
from ragops.releases import hash_user
from serving.mcp_server import LogMissingToken, build_mcp_server
from serving.metrics import CONTENT_TYPE_LATEST, Metrics
from serving.ratelimit import RateLimiter
from serving.schemas import AskResponse, ErrorBody, Query, SearchResponse

log = logging.getLogger(__name__)


def caller_key(request: Request, user_id: str | None) -> str:
    """API key (Bearer or X-API-Key), else the user id, else the client address."""
    auth = request.headers.get("authorization", "")
    key = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else request.headers.get("x-api-key")
    if key:
        return "key:" + hash_user(key)
    if user_id:
        return "user:" + user_id
    return "addr:" + (request.client.host if request.client else "unknown")


def create_app(settings: Settings | None = None, *, service: AnswerService | None = None,
               tools: list[ToolConfig] | None = None, limiter: RateLimiter | None = None,
               base_url: str | None = None) -> FastAPI:
    settings = settings or Settings()
    settings.ensure_home()
    tools = tools if tools is not None else [ToolConfig.from_dict(t) for t in settings.mcp_tools]
    service = service or AnswerService(settings, chat_model=build_chat_model(settings), tools=tools)
    events = EventWriter(service.registry)
    metrics = Metrics()
    limiter = limiter or RateLimiter(settings.rate_limit, settings.rate_limit_global, settings.redis_url)
    limiter.enabled = settings.rate_limit_enabled
    # re-read on change: a token issued or revoked with `ragops token` counts from the next request
    permissions = WatchedPermissions(settings.mcp_permissions) if settings.mcp_permissions else Permissions()
    base_url = base_url or settings.public_url
    mcp = build_mcp_server(service, permissions, events, metrics, base_url=base_url)
    # Stateless JSON responses: any serving replica or worker can answer any MCP request. DNS-rebinding protection
    # is on when the public URL is a loopback address, as the SDK decides from `host`.
    mcp_app = mcp.streamable_http_app(streamable_http_path="/", stateless_http=True, json_response=True,
                                      host=urlparse(base_url).hostname or "127.0.0.1")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await anyio.to_thread.run_sync(service.embedder.encode, ["warm up"])  # load the model before traffic
        async with mcp.session_manager.run():
            yield
        events.close()  # drain queued events: a clean shutdown loses none

    # FastAPIOffline serves Swagger UI's and ReDoc's assets from its package: /docs works without a CDN
    app = FastAPIOffline(title="ragops assistant", version="1", lifespan=lifespan,
                  description="Answers from the ragops knowledge base, with honest fallbacks. The MCP server is at /mcp.")
    app.state.service, app.state.events, app.state.metrics, app.state.limiter = service, events, metrics, limiter
    app.state.permissions = permissions

    def record(request: Request, endpoint: str, status: int, latency_ms: float, *, variant: str = "stable",
               release_id: int | None = None, fallback: str | None = None, error: str | None = None,
               chunk_ids: list[str] | None = None, user: str = "") -> None:
        metrics.requests.labels(endpoint, str(status)).inc()
        metrics.latency.labels(endpoint, variant).observe(latency_ms / 1000)
        if fallback:
            metrics.fallbacks.labels(fallback).inc()
        if settings.request_events:
            events.record("request", request_id=request.state.request_id, endpoint=endpoint, user_hash=hash_user(user),
                          variant=variant, release_id=release_id, latency_ms=latency_ms, status=status,
                          fallback=fallback, error=error, chunk_ids=chunk_ids or [])

    @app.middleware("http")
    async def request_id(request: Request, call_next):
        request.state.request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        request.state.started = time.perf_counter()
        response = await call_next(request)
        response.headers["X-Request-ID"] = request.state.request_id
        return response

    def error(request: Request, status: int, code: str, message: str, headers=None, **extra) -> JSONResponse:
        body = {"error": {"code": code, "message": message}, "request_id": request.state.request_id} | extra
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in exc.errors())
        if request.url.path.startswith("/v1/"):
            record(request, request.url.path, 422, _elapsed(request), error="invalid_request")
        return error(request, 422, "invalid_request", problems or "the request body is not valid")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return error(request, exc.status_code, "http_error", str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("request %s failed", request.state.request_id)
        if request.url.path.startswith("/v1/"):
            record(request, request.url.path, 500, _elapsed(request), error=type(exc).__name__)
        return error(request, 500, "internal_error", "the request failed unexpectedly; it was logged under this request id")

    async def limited(request: Request, body: Query, endpoint: str):
        caller = caller_key(request, body.user_id)
        decision = await limiter.hit(caller)
        if decision is not None and not decision.allowed:
            metrics.rate_limited.labels(decision.scope).inc()
            record(request, endpoint, 429, _elapsed(request), fallback="rate_limited", user=caller)
            message = fallbacks.RATE_LIMITED.message.format(retry_after=decision.retry_after)
            return caller, None, error(request, 429, "rate_limited", message, headers=decision.headers(),
                                       fallback="rate_limited")
        return caller, (decision.headers() if decision else {}), None

    def respond(request: Request, endpoint: str, result: AnswerResult, payload: dict, user: str, headers: dict):
        record(request, endpoint, result.status, result.latency_ms, variant=result.variant, release_id=result.release_id,
               fallback=result.fallback, chunk_ids=result.chunk_ids, user=user)
        payload = payload | {"request_id": request.state.request_id}
        if result.status >= 400:
            payload["error"] = {"code": result.fallback, "message": result.answer}
        return JSONResponse(payload, status_code=result.status, headers=headers)

    problem = {"model": ErrorBody}
    responses = {422: problem, 429: problem, 503: problem}

    @app.post("/v1/ask", response_model=AskResponse, responses=responses, summary="Answer a question with citations")
    async def ask(body: Query, request: Request):
        caller, headers, refused = await limited(request, body, "/v1/ask")
        if refused:
            return refused
        result = await service.ask(body.question, user_key=body.user_id or caller, k=body.k)
        return respond(request, "/v1/ask", result, result.to_dict(), body.user_id or caller, headers)

    @app.post("/v1/search", response_model=SearchResponse, responses=responses, summary="Search the knowledge base")
    async def search(body: Query, request: Request):
        caller, headers, refused = await limited(request, body, "/v1/search")
        if refused:
            return refused
        result = await service.search(body.question, user_key=body.user_id or caller, k=body.k)
        payload = {"results": [h.to_dict() for h in result.hits] if not result.fallback else [],
                   "fallback": result.fallback, "message": result.answer or None, "variant": result.variant,
                   "release": result.release, "latency_ms": round(result.latency_ms, 2)}
        return respond(request, "/v1/search", result, payload, body.user_id or caller, headers)

    @app.get("/healthz", summary="Liveness")
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness: index, registry and (when configured) the LLM")
    async def readyz():
        checks = await anyio.to_thread.run_sync(_readiness, service, settings)
        ready = all(c["ok"] for c in checks.values())
        return JSONResponse({"ready": ready, "checks": checks,
                             "not_ready": [name for name, c in checks.items() if not c["ok"]]},
                            status_code=200 if ready else 503)

    @app.get("/metrics", summary="Prometheus metrics")
    async def prometheus():
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    app.mount("/mcp", LogMissingToken(mcp_app, events))
    return _McpPath(app)


class _McpPath:
    """Serve /mcp itself (not only /mcp/) without a redirect round trip; attributes pass through to FastAPI."""

    def __init__(self, app: FastAPI):
        self.app = app

    def __getattr__(self, name):
        return getattr(self.app, name)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] == "/mcp":
            scope = dict(scope, path="/mcp/", raw_path=b"/mcp/")
        await self.app(scope, receive, send)


def _elapsed(request: Request) -> float:
    return (time.perf_counter() - getattr(request.state, "started", time.perf_counter())) * 1000


def _readiness(service: AnswerService, settings: Settings) -> dict:
    checks = {}
    try:
        with service.registry.session() as s:
            s.execute(text("SELECT 1"))
        checks["registry"] = {"ok": True}
    except Exception as exc:  # noqa: BLE001 - readiness reports any failure by name
        checks["registry"] = {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    try:
        _, _, version = service.route("readyz")
        count = service.retriever(version).store.count()
        checks["index"] = {"ok": count > 0, "index_version": version, "chunks": count}
    except Exception as exc:  # noqa: BLE001 - readiness reports any failure by name
        checks["index"] = {"ok": False, "error": str(exc)[:200]}
    if settings.llm_base_url:
        import httpx

        try:
            reply = httpx.get(settings.llm_base_url.rstrip("/") + "/models", timeout=2.0)
            checks["llm"] = {"ok": reply.status_code < 500, "status": reply.status_code}
        except httpx.HTTPError as exc:
            checks["llm"] = {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    return checks
