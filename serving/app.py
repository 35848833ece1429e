"""The serving app: `create_app(settings)` builds it; `ragops serve` runs it under uvicorn.

Around the routes, from the outside in: trusted-proxy address rewriting (only for RAGOPS_TRUSTED_PROXIES), the
request body limit, then FastAPI. A request is identified (API key, else address and session), rate-limited, answered,
and leaves exactly one request event, whatever its outcome.
"""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager
from urllib.parse import urlparse

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from ragops.answer import fallbacks
from ragops.answer.llm import build_chat_model
from ragops.answer.pipeline import DEFAULTS, AnswerResult, AnswerService
from ragops.audit.anchor import signing_key
from ragops.audit.permissions import Permissions, WatchedPermissions
from ragops.config import Settings
from ragops.errors import StoreUnavailable
from ragops.feedback.redact import Redactor
from ragops.feedback.votes import WaitSlots
from ragops.index import close_backends
from ragops.mcp_client import ToolConfig
from ragops.monitoring.aggregate import served_status
from ragops.monitoring.events import EventWriter, asked, request_event
from ragops.registry import Registry
from serving.admission import CostGate, cost
from serving.backend import Backend, Readiness
from serving.callers import Caller, Callers, InvalidApiKey
from serving.feedback import add_feedback_route
from serving.guards import BodyLimit, McpPath, RequestIds
from serving.mcp_server import LogMissingToken, build_mcp_server
from serving.openai_api import register as register_openai
from serving.refusals import RefusalLog
from serving.metrics import CONTENT_TYPE_LATEST, Metrics
from serving.ratelimit import Decision, RateLimiter
from serving.schemas import AskResponse, ErrorBody, Query, Readiness as ReadinessBody, SearchResponse
from serving.sessions import HEADER as SESSION_HEADER
from serving.status import StatusCollector
from serving.streams import Doors, streamed_ask

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, service: AnswerService | None = None,
               tools: list[ToolConfig] | None = None, limiter: RateLimiter | None = None,
               base_url: str | None = None):
    # The serving path only reads the index: on Weaviate it connects with the read-only key (RAGOPS_WEAVIATE_READER_API_KEY)
    settings = (settings or Settings()).model_copy(update={"weaviate_read_only": True})
    settings.ensure_home()
    audit_key = signing_key(settings)  # a bad key file stops the app here, before anything starts
    tools = tools if tools is not None else [ToolConfig.from_dict(t) for t in settings.mcp_tools]
    embedder = service.embedder if service else None
    metrics = Metrics()
    guard = _tool_guard(settings, service, tools, lambda: backend.get().registry, metrics)
    backend = Backend(settings, _builder(settings, tools, embedder, guard), service)
    embedder = embedder or backend.embedder
    events = EventWriter(lambda: backend.get().registry, spool=settings.event_spool_path,
                         on_drop=lambda kind, n, reason: metrics.events_dropped.labels(kind, reason).inc(n),
                         on_written=lambda kind, n, _: metrics.events_written.labels(kind).inc(n),
                         audit_key=audit_key)
    limiter = limiter or RateLimiter(settings.rate_limit, settings.rate_limit_global, settings.redis_url)
    limiter.enabled = settings.rate_limit_enabled
    gate = CostGate(settings.expensive_cost, settings.expensive_concurrency, settings.expensive_queue)
    callers = Callers(settings)
    redact = Redactor.from_settings(settings)  # questions are redacted before they are stored (docs/privacy.md)
    # re-read on change: a token issued or revoked with `ragops token` counts from the next request
    permissions = WatchedPermissions(settings.mcp_permissions) if settings.mcp_permissions else Permissions()
    readiness = Readiness(backend, settings)
    base_url = base_url or settings.public_url
    # The registry-backed gauges of /metrics (freshness, quarantine, readiness), read in the background.
    status = StatusCollector(settings, lambda: backend.get().registry, readiness.check)
    metrics.add_collector(status)
    refusals = RefusalLog(events, settings.mcp_refusal_log_window_s)
    feedback_slots = WaitSlots()  # votes waiting for their event, over HTTP and MCP together
    mcp = build_mcp_server(backend.get, permissions, events, metrics, base_url=base_url, limiter=limiter,
                           limits=(settings.rate_limit_mcp or settings.rate_limit,
                                   settings.rate_limit_mcp_address or settings.rate_limit_address),
                           refusals=refusals, redact=redact, record_events=settings.request_events,
                           feedback_wait_s=settings.feedback_wait_s, feedback_slots=feedback_slots)
    # Stateless JSON responses: any serving replica or worker can answer any MCP request. DNS-rebinding protection
    # is on when the public URL is a loopback address, as the SDK decides from `host`.
    mcp_app = mcp.streamable_http_app(streamable_http_path="/", stateless_http=True, json_response=True,
                                      host=urlparse(base_url).hostname or "127.0.0.1")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await anyio.to_thread.run_sync(embedder.encode, ["warm up"])  # load the model before traffic
        try:
            await backend.ready_service()
        except StoreUnavailable as exc:  # start anyway: not ready, 503s, and the service is built once it returns
            log.error("starting without the registry (requests get store_unavailable until it returns): %s", exc)
        status.start()
        try:
            async with mcp.session_manager.run(), anyio.create_task_group() as background:
                if guard is not None:
                    await guard.start()  # tools are compared with their pins before the first request
                    background.start_soon(guard.run)
                yield
                background.cancel_scope.cancel()
        finally:
            status.stop()
        refusals.flush()  # the counts of the last window's repeated refusals
        events.close()  # drain queued events: a clean shutdown loses none (the spool keeps what the registry cannot)
        close_backends()  # the process's index client (Weaviate)

    # FastAPIOffline serves Swagger UI's and ReDoc's assets from its package: /docs works without a CDN
    app = FastAPIOffline(title="ragops assistant", version="1", lifespan=lifespan,
                     description="Answers from the ragops knowledge base, with honest fallbacks. The MCP server is at /mcp.")
    app.state.service, app.state.backend, app.state.events = service, backend, events
    app.state.metrics, app.state.limiter, app.state.permissions = metrics, limiter, permissions
    app.state.cost_gate = gate
    app.state.readiness, app.state.status, app.state.tool_guard = readiness, status, guard
    app.state.refusals, app.state.feedback_slots = refusals, feedback_slots

    def record(request_id_: str, endpoint: str, status: int, latency_ms: float, *, variant: str = "stable",
               release_id: int | None = None, fallback: str | None = None, error: str | None = None,
               chunk_ids: list[str] | None = None, caller: Caller | None = None, **kept) -> None:
        metrics.requests.labels(endpoint, str(status)).inc()
        if served_status(status):  # a 4xx (refused, or 499: the client left) is counted, but is no answer's latency
            metrics.latency.labels(endpoint, variant).observe(latency_ms / 1000)
        if fallback:
            metrics.fallbacks.labels(fallback).inc()
        if settings.request_events:
            events.record("request", **request_event(request_id_, endpoint, caller.user if caller else "", status,
                                                     latency_ms, variant=variant, release_id=release_id,
                                                     fallback=fallback, error=error, chunk_ids=chunk_ids,
                                                     verified=bool(caller and caller.verified),
                                                     synthetic=bool(caller and caller.synthetic), **kept))

    def recorded(request: Request, status: int, **kw) -> None:
        if request.url.path in ENDPOINTS:
            record(request.state.request_id, request.url.path, status, _elapsed(request), **kw)

    def error(request: Request, status: int, code: str, message: str, headers=None, **extra) -> JSONResponse:
        body = {"error": {"code": code, "message": message}, "request_id": request.state.request_id} | extra
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in exc.errors())
        recorded(request, 422, error="invalid_request")
        return error(request, 422, "invalid_request", problems or "the request body is not valid")

    @app.exception_handler(InvalidApiKey)
    async def invalid_key(request: Request, exc: InvalidApiKey):
        recorded(request, 401, error=exc.code)
        return error(request, 401, exc.code, str(exc), headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(StoreUnavailable)
    async def store_unavailable(request: Request, exc: StoreUnavailable):
        log.error("request %s: %s", request.state.request_id, exc)
        caller = request.state.caller
        recorded(request, 503, fallback="store_unavailable", caller=caller)
        return error(request, 503, "store_unavailable", fallbacks.STORE_UNAVAILABLE.message,
                     headers=_session_header(caller), fallback="store_unavailable")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        recorded(request, exc.status_code, error="http_error")
        return error(request, exc.status_code, "http_error", str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("request %s failed", request.state.request_id)
        recorded(request, 500, error=type(exc).__name__)
        return error(request, 500, "internal_error", "the request failed unexpectedly; it was logged under this request id")

    @asynccontextmanager
    async def admitted(request: Request, question: str, user_id: str | None, k: int | None, extra_cost: int = 0):
        """Identify the caller, apply its rate limits and admit the question by cost (plus `extra_cost`: a model call
        made for it beside the answer's); yields (caller, decision, refusal), the refusal being the 429 to send
        instead. A cost-gate slot is held until this exits."""
        caller = callers.identify(request, user_id)  # the body's user_id never picks the variant on its own
        request.state.caller = caller
        decision = await limiter.hit(caller.bucket, caller.limit)
        if decision is not None and not decision.allowed:
            yield caller, decision, refuse(request, caller, decision)
            return
        async with gate.admit(cost(question, k or DEFAULTS["k"]) + extra_cost) as refused_by_cost:
            yield caller, decision, (refuse(request, caller, refused_by_cost) if refused_by_cost else None)

    async def answer(request: Request, body: Query, endpoint: str, operation) -> Response:
        async with admitted(request, body.question, body.user_id, body.k) as (caller, decision, refusal):
            if refusal is not None:
                return refusal
            return await answered(request, body, caller, decision, endpoint, operation)

    def refuse(request: Request, caller: Caller, decision: Decision) -> JSONResponse:
        """429 `rate_limited` with Retry-After, counted by the scope that refused (caller, global or cost)."""
        metrics.rate_limited.labels(decision.scope).inc()
        recorded(request, 429, fallback="rate_limited", caller=caller)
        message = fallbacks.RATE_LIMITED.message.format(retry_after=decision.retry_after)
        return error(request, 429, "rate_limited", message, headers=decision.headers() | _session_header(caller),
                     fallback="rate_limited")

    async def answered(request: Request, body: Query, caller: Caller, decision: Decision | None, endpoint: str,
                       operation) -> Response:
        svc = await ready()
        result, payload = await operation(svc, body.question, caller.route, body.k, request.state.request_id)
        record(request.state.request_id, endpoint, result.status, result.latency_ms, variant=result.variant,
               release_id=result.release_id, fallback=result.fallback, error=result.error, chunk_ids=result.chunk_ids,
               caller=caller, **asked(redact, body.question, result))
        payload = payload | {"request_id": request.state.request_id}
        if result.status >= 400:
            payload["error"] = {"code": result.fallback, "message": result.answer}
        return JSONResponse(payload, status_code=result.status, headers=reply_headers(caller, decision))

    def reply_headers(caller: Caller, decision: Decision | None) -> dict:
        return (decision.headers() if decision else {}) | _session_header(caller)

    async def ready() -> AnswerService:
        svc = await backend.ready_service()
        try:  # refresh the routing cache off the event loop, within the store's deadline
            with anyio.fail_after(settings.store_timeout_s):
                await anyio.to_thread.run_sync(svc.rollout, abandon_on_cancel=True)
        except TimeoutError:
            raise StoreUnavailable(f"the registry did not answer within {settings.store_timeout_s:g} s") from None
        return svc

    async def ask_op(svc: AnswerService, question: str, user: str, k: int | None, request_id: str):
        result = await svc.ask(question, user_key=user, k=k, reference=request_id)
        return result, result.to_dict() | {"truncated": result.truncated}

    async def search_op(svc: AnswerService, question: str, user: str, k: int | None, _request_id: str):
        result: AnswerResult = await svc.search(question, user_key=user, k=k)
        return result, {"results": [h.to_dict() for h in result.hits] if not result.fallback else [],
                        "fallback": result.fallback, "message": result.answer or None, "variant": result.variant,
                        "release": result.release, "latency_ms": round(result.latency_ms, 2)}

    problem = {"model": ErrorBody}
    responses = {400: problem, 401: problem, 413: problem, 422: problem, 429: problem, 503: problem}

    def record_redacted(*args, question: str | None = None, query: str | None = None, **kw) -> None:
        """`record` for the streamed and chat routes: the question and the condensed query redacted first."""
        record(*args, **kw, **({"question": redact(question)} if question is not None else {}),
               **({"query": redact(query)} if query is not None else {}))

    doors = Doors(settings, admitted, ready, record_redacted, error, reply_headers,
                  lambda endpoint, status: metrics.requests.labels(endpoint, str(status)).inc(),
                  lambda endpoint, ms: metrics.first_token.labels(endpoint).observe(ms / 1000),
                  lambda: _has_model(backend, settings))

    streamed = {200: {"content": {"text/event-stream": {}}}}  # server-sent events: docs/serving.md

    @app.post("/v1/ask", response_model=AskResponse, responses=responses | streamed, summary="Answer a question with citations; "
              "with `stream: true`, as server-sent events (start, delta..., done)")
    async def ask(body: Query, request: Request):
        if body.stream:
            return await streamed_ask(request, body, doors)
        return await answer(request, body, "/v1/ask", ask_op)

    @app.post("/v1/search", response_model=SearchResponse, responses=responses, summary="Search the knowledge base")
    async def search(body: Query, request: Request):
        return await answer(request, body, "/v1/search", search_op)

    @app.get("/healthz", summary="Liveness")
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz", response_model=ReadinessBody, responses={503: {"model": ReadinessBody}},
             summary="Readiness: search can be served (registry and index); a down LLM is reported as degraded")
    async def readyz():
        result = await readiness()
        return JSONResponse(result, status_code=200 if result["ready"] else 503)

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics (text exposition format)",
             responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
    async def prometheus():
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    register_openai(app, doors, responses | streamed)  # /v1/chat/completions and /v1/models (serving/openai_api.py)
    add_feedback_route(app, settings, callers=callers, limiter=limiter, backend=backend, metrics=metrics,
                       redact=redact, refuse=refuse, error=error, slots=feedback_slots)
    app.mount("/mcp", LogMissingToken(mcp_app, refusals, metrics))

    def refused(scope: dict, rid: str) -> None:
        if scope["path"] in ENDPOINTS:
            record(rid, scope["path"], 413, 0.0, error="payload_too_large")

    stack = BodyLimit(RequestIds(app), settings.max_body_bytes, refused)
    if settings.trusted_proxies:
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        stack = ProxyHeadersMiddleware(stack, trusted_hosts=settings.trusted_proxies)
    return McpPath(app, stack)


ENDPOINTS = ("/v1/ask", "/v1/search", "/v1/chat/completions")  # the questions: each leaves one request event


def _builder(settings: Settings, tools: list[ToolConfig], embedder=None, tool_guard=None):
    from ragops.ingest.embedding import Embedder

    embedder = embedder or Embedder.from_settings(settings)
    chat_model = build_chat_model(settings)

    def build() -> AnswerService:
        registry = Registry(settings.registry_url, statement_timeout_s=settings.store_timeout_s)
        return AnswerService(settings, registry=registry, embedder=embedder, chat_model=chat_model, tools=tools,
                             tool_guard=tool_guard)

    return build, embedder


def _tool_guard(settings: Settings, service: AnswerService | None, tools: list[ToolConfig], registry, metrics: Metrics):
    """Hold connected MCP tools whose definition moved away from its pin (ragops.mcp_tools). One guard per app: it is
    given to the service built by the backend, or to the service passed in; `registry` is read only when checking,
    so the guard waits for a registry that is away at start-up."""
    if service is not None:
        if service.tool_guard is not None:
            return service.tool_guard
        tools, registry = service.tools, service.registry
    if not tools:
        return None
    from ragops.mcp_tools.guard import ToolGuard
    from ragops.mcp_tools.sampling import LiveSampler

    guard = ToolGuard(registry, tools, settings.mcp_tool_check_interval_s,
                      on_held=lambda tool, held: metrics.tool_held.labels(tool).set(int(held)),
                      on_blocked=lambda tool: metrics.tool_held_calls.labels(tool).inc(),
                      retry_s=settings.registry_retry_s, sampler=LiveSampler.from_settings(settings, tools))
    if service is not None:
        service.tool_guard = guard
    return guard


def _has_model(backend: Backend, settings: Settings) -> bool:
    """Whether a language model answers (and condenses follow-ups), known before the registry is: the service's own
    model once it is built, else the one the settings configure (`build_chat_model`)."""
    service = backend.service
    if service is None:
        return bool(settings.llm_base_url)
    # a model behind an open circuit is not called (the follow-up is condensed by the rule): nothing to charge for
    breaker = getattr(service.chat_model, "breaker", None)
    return service.chat_model is not None and getattr(breaker, "state", "closed") != "open"


def _session_header(caller: Caller | None) -> dict:
    """The session issued to a caller without a key: sent back, it keeps the caller in its variant."""
    return {SESSION_HEADER: caller.session} if caller is not None and caller.session else {}


def _elapsed(request: Request) -> float:
    return (time.perf_counter() - getattr(request.state, "started", time.perf_counter())) * 1000
