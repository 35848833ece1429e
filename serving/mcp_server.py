"""The MCP server: knowledge-base tools behind the permissions file; every call lands in the access log.

Every `tools/call` passes through `GatedServer.call_tool`: unknown tools, invalid arguments, denials and failures
are logged like granted calls. A tool's `collection` argument names what it reads: `live` (the stable release, the
default), `candidate` (the release being rolled out) or a release by name; the grant's `collections` list these
names, and the read goes to exactly that release's index version.

MCP runs under the limits of HTTP: each tool call counts against its client's bucket (RAGOPS_RATE_LIMIT_MCP, default
RAGOPS_RATE_LIMIT) and against its address's bucket, the one /v1 uses (RAGOPS_RATE_LIMIT_MCP_ADDRESS, default
RAGOPS_RATE_LIMIT_ADDRESS), then the global one; a refusal is a tool error "rate limited, retry after N s". Arguments
have /v1's bounds and are refused before any work. Refusals a flood repeats are logged aggregated (refusals.py).
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import time
import uuid
from typing import Annotated, Any, Callable, Literal

import anyio
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field, ValidationError

from ragops.answer.pipeline import AnswerService
from ragops.audit.permissions import ClientGrant, Permissions
from ragops.errors import StoreUnavailable, UnknownRequest
from ragops.feedback.redact import Redactor
from ragops.feedback.votes import REASONS, WaitSlots, submit_vote
from ragops.monitoring.events import EventWriter, asked, request_event
from ragops.releases import ReleaseError, release_for_view
from serving.callers import address_bucket, bearer_token
from serving.ratelimit import RateLimiter
from serving.refusals import RefusalLog
from serving.schemas import COMMENT_MAX, K_MAX, NAME_MAX, QUESTION_MAX, REQUEST_ID_MAX, URI_MAX

INSTRUCTIONS = ("Search the ragops knowledge base and read its documents. Results cite the document URI of each passage. "
                "`collection` is `live` (default), `candidate` or a release name, as your grant allows.")
TOOLS = ("search_knowledge_base", "get_document", "rate_answer")
UNSCOPED = ("rate_answer",)  # tools that read no collection: the grant's collections do not apply
_client: contextvars.ContextVar[str] = contextvars.ContextVar("mcp_client", default="stdio")
_address: contextvars.ContextVar[str] = contextvars.ContextVar("mcp_address", default="unknown")
Collection = Annotated[str, Field(min_length=1, max_length=NAME_MAX)]


class PermissionsVerifier:
    """The SDK's bearer-auth hook: unknown, revoked or expired tokens get 401 and a line in the access log."""

    def __init__(self, permissions: Permissions, refusals: RefusalLog, metrics=None):
        self.permissions = permissions
        self.refusals = refusals
        self.metrics = metrics

    async def verify_token(self, token: str) -> AccessToken | None:
        grant = self.permissions.by_token(token)
        reason = ("unknown token" if grant is None else "client is revoked" if grant.revoked
                  else "token expired" if grant.expired() else None)
        self.refusals.tick()
        if reason:
            if self.metrics is not None:
                self.metrics.mcp_calls.labels(grant.name if grant else "unknown", "-", "denied").inc()
            self.refusals.record(grant.name if grant else "unknown", "-", _address.get(), reason, "unauthenticated")
            return None
        expires = int(grant.expires.timestamp()) if grant.expires else None
        return AccessToken(token=token, client_id=grant.name, scopes=list(grant.tools), expires_at=expires)


class LogMissingToken:
    """ASGI wrapper: a request that reaches /mcp with no bearer token at all is refused (401) and logged too. It
    also notes the client's address, which the token verifier is not given."""

    def __init__(self, app, refusals: RefusalLog, metrics=None):
        self.app = app
        self.refusals = refusals
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        _address.set(scope["client"][0] if scope.get("client") else "unknown")
        headers = dict(scope.get("headers") or [])
        has_token = bearer_token(headers.get(b"authorization", b"").decode("latin-1")) is not None

        async def watch(message):
            if message["type"] == "http.response.start" and message["status"] == 401 and not has_token:
                if self.metrics is not None:
                    self.metrics.mcp_calls.labels("anonymous", "-", "denied").inc()
                self.refusals.record("anonymous", "-", _address.get(), "no bearer token", "unauthenticated")
            await send(message)

        await self.app(scope, receive, watch)


def _args_hash(arguments: Any) -> str:
    return hashlib.sha256(json.dumps(arguments, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _request_address(context: Context | None) -> str:
    """The caller's address, as /v1 sees it (after the trusted-proxy rewrite)."""
    try:
        request = context.request_context.request if context else None
    except ValueError:  # no request in flight
        return _address.get()
    client = getattr(request, "client", None)
    return client.host if client else _address.get()


def _failure(exc: Exception) -> str:
    if isinstance(exc.__cause__, ValidationError):  # field names only: the rejected values are the caller's data
        fields = sorted({".".join(str(p) for p in e["loc"]) for e in exc.__cause__.errors()})
        return "invalid arguments: " + ", ".join(fields)
    return str(exc) if isinstance(exc, ToolError) else type(exc).__name__


class GatedServer(MCPServer):
    """An MCPServer whose every tool call is authorised against the grant and written to the access log."""

    def __init__(self, *args, permissions: Permissions, events: EventWriter | None, metrics=None, http: bool = True,
                 limiter: RateLimiter | None = None, limits: tuple[str, str] = ("", ""),
                 refusals: RefusalLog | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.permissions, self.events, self.metrics, self.http = permissions, events, metrics, http
        self.limiter, self.limits, self.refusals = limiter, limits, refusals

    def _grant(self, context: Context | None) -> tuple[str, ClientGrant | None]:
        if not self.http:
            return "stdio", None
        header = ""
        try:
            header = (context.headers or {}).get("authorization", "") if context else ""
        except ValueError:  # no request in flight
            pass
        token = bearer_token(header)
        grant = self.permissions.by_token(token) if token else None
        return (grant.name if grant else "unknown"), grant

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Context | None = None):
        started = time.perf_counter()
        client, grant = self._grant(context)
        collection = arguments.get("collection", "live") if isinstance(arguments, dict) else "live"
        if self.http:
            await self._admit(context, client, name)
            scope = None if name in UNSCOPED else str(collection)
            allowed, reason = grant.allows(name, scope) if grant else (False, "no client for this token")
            if not allowed:
                self._log(context, client, name, "denied", reason, started, "denied", arguments)
                raise ToolError(f"permission denied: {reason}")
        token = _client.set(client)
        try:
            result = await super().call_tool(name, arguments, context)
        except Exception as exc:
            self._log(context, client, name, "allowed", _failure(exc), started, "error", arguments)
            raise
        finally:
            _client.reset(token)
        self._log(context, client, name, "allowed", "granted", started, "ok", arguments)
        return result

    async def _admit(self, context: Context | None, client: str, tool: str) -> None:
        """Count the call against the client's bucket, then its address's (shared with /v1), then the global one."""
        if self.limiter is None:
            return
        address = _request_address(context)
        decision = await self.limiter.hit_each([(f"mcp:{client}", self.limits[0] or None),
                                                (address_bucket(address), self.limits[1] or None)])
        if decision is None or decision.allowed:
            return
        scope = ("mcp_global" if decision.scope == "global"
                 else "mcp_token" if decision.bucket.startswith("mcp:") else "mcp_address")
        if self.metrics is not None:
            self.metrics.rate_limited.labels(scope).inc()
            self.metrics.mcp_calls.labels(client, tool if tool in TOOLS else "unknown", "denied").inc()
        if self.refusals is not None:
            self.refusals.record(client, tool if tool in TOOLS else "unknown", address, f"rate limited ({scope})",
                                 "rate_limited")
        raise ToolError(f"rate limited, retry after {decision.retry_after} s")

    def _log(self, context, client, tool, decision, reason, started, status, arguments) -> None:
        if self.metrics is not None:  # a caller-chosen tool name must not mint new metric series
            self.metrics.mcp_calls.labels(client, tool if tool in TOOLS else "unknown", decision).inc()
        if self.events is None:
            return
        request_id = ""
        try:
            request_id = context.request_id if context else ""
        except (ValueError, AttributeError):
            pass
        self.events.record("mcp", client=client, tool=tool, decision=decision, reason=reason,
                           latency_ms=(time.perf_counter() - started) * 1000, status=status, request_id=request_id,
                           args_hash=_args_hash(arguments))


def build_mcp_server(service: AnswerService | Callable[[], AnswerService], permissions: Permissions,
                     events: EventWriter | None, metrics=None, *, base_url: str = "http://127.0.0.1:8000",
                     http: bool = True, limiter: RateLimiter | None = None, limits: tuple[str, str] = ("", ""),
                     refusals: RefusalLog | None = None, redact: Redactor | None = None,
                     feedback_wait_s: float = 0.0, feedback_slots: WaitSlots | None = None,
                     record_events: bool = True) -> MCPServer:
    """`http=False` builds the stdio server: a local process that its user started, so no token is asked.

    `service` may be a callable that returns the answer service or raises StoreUnavailable (registry still away).
    `limits` are the per-client and per-address limits (empty: the limiter's per-caller one). `feedback_slots` caps
    the votes that wait for their request event at once (the app shares its own with `POST /v1/feedback`).
    `record_events`: each search writes a request event (RAGOPS_REQUEST_EVENTS), whose id its passages carry."""
    slots = feedback_slots or WaitSlots()
    current = service if callable(service) and not isinstance(service, AnswerService) else (lambda: service)
    # Opaque tokens from the permissions file carry no audience, so there is no resource claim to check.
    auth = AuthSettings(issuer_url=base_url, resource_server_url=f"{base_url}/mcp",
                        validate_token_resource=False) if http else None
    refusals = refusals or RefusalLog(events)
    verifier = PermissionsVerifier(permissions, refusals, metrics) if http else None
    server = GatedServer("ragops", instructions=INSTRUCTIONS, token_verifier=verifier, auth=auth,
                         permissions=permissions, events=events, metrics=metrics, http=http, limiter=limiter,
                         limits=limits, refusals=refusals)

    def view(collection: str):
        svc = current()
        rollout, _ = svc.rollout()
        return svc, release_for_view(svc.registry, rollout, collection)

    async def routed(collection: str):
        try:  # registry reads happen off the event loop
            return await anyio.to_thread.run_sync(view, collection)
        except (ReleaseError, StoreUnavailable) as exc:
            raise ToolError(str(exc)) from exc

    @server.tool(description="Search the knowledge base. Returns the best passages with their document URI and score. "
                             "`collection`: live (default), candidate or a release name.")
    async def search_knowledge_base(query: Annotated[str, Field(min_length=1, max_length=QUESTION_MAX)],
                                    k: Annotated[int, Field(ge=1, le=K_MAX)] = 5,
                                    collection: Collection = "live") -> list[dict]:
        svc, release = await routed(collection)
        user = f"mcp:{_client.get()}"
        result = await svc.search(query, user_key=user, k=k, release=release)
        # One request event per search, like /v1/search's: its id is what `rate_answer` rates.
        request_id = f"mcp-{uuid.uuid4().hex}"
        if events is not None and record_events:
            events.record("request", **request_event(
                request_id, "/mcp/search_knowledge_base", user, result.status, result.latency_ms,
                variant=result.variant, release_id=result.release_id, fallback=result.fallback,
                chunk_ids=result.chunk_ids, verified=http, **asked(redact or _unchanged, query, result)))
        if result.fallback == "store_unavailable":
            raise ToolError(result.answer)
        if result.fallback:  # nothing matched: say so, with the id a vote of `no_answer` can name
            return [{"request_id": request_id, "fallback": result.fallback, "message": result.answer}]
        return [h.to_dict() | {"title": h.title, "request_id": request_id} for h in result.hits]

    @server.tool(description="Read a whole document of the knowledge base by its URI, in reading order. "
                             "`collection`: live (default), candidate or a release name.")
    async def get_document(uri: Annotated[str, Field(min_length=1, max_length=URI_MAX)],
                           collection: Collection = "live") -> dict:
        svc, release = await routed(collection)
        try:
            _, _, version = svc.route(f"mcp:{_client.get()}", release)
            chunks = await anyio.to_thread.run_sync(lambda: svc.retriever(version).store.document(uri))
        except StoreUnavailable as exc:
            raise ToolError(f"the document could not be read: {exc}") from exc
        if not chunks:
            raise ToolError(f"no document {uri!r} in the {collection} collection")
        return {"uri": uri, "title": chunks[0].title, "text": "\n\n".join(c.text for c in chunks)}

    @server.tool(description="Rate an answer you were given, by its request id: rating `up` or `down`, with an "
                             "optional reason (wrong, incomplete, outdated, no_answer) and comment. A second vote on "
                             "the same request replaces the first. Only your own requests can be rated.")
    async def rate_answer(request_id: Annotated[str, Field(min_length=1, max_length=REQUEST_ID_MAX,
                                                           pattern=r"^[\x21-\x7e]+$")],
                          rating: Literal["up", "down"],
                          reason: Literal[REASONS] | None = None,
                          comment: Annotated[str | None, Field(max_length=COMMENT_MAX)] = None,
                          cited_followed: bool | None = None) -> dict:
        try:  # the identity MCP calls are routed and recorded under: the client named by the token
            registry = current().registry
            with slots.wait(feedback_wait_s) as wait_s:
                vote = await submit_vote(registry, request_id, f"mcp:{_client.get()}", rating, reason=reason,
                                         comment=comment, cited_followed=cited_followed, redact=redact,
                                         wait_s=wait_s)
        except (UnknownRequest, StoreUnavailable) as exc:
            raise ToolError(str(exc)) from exc
        return vote.to_dict()

    return server


def run_stdio(settings) -> None:
    """`ragops mcp`: the same tools over stdio, for a local client that starts this process itself."""
    from ragops.answer.pipeline import AnswerService
    from ragops.audit.anchor import signing_key
    from ragops.monitoring.events import EventWriter, asked, request_event

    service = AnswerService(settings)
    events = EventWriter(service.registry, spool=settings.event_spool_path, audit_key=signing_key(settings))
    try:
        build_mcp_server(service, Permissions(), events, http=False, redact=Redactor.from_settings(settings),
                         feedback_wait_s=settings.feedback_wait_s).run("stdio")
    finally:
        events.close()


def _unchanged(text: str) -> str:
    return text
