"""The MCP server: knowledge-base tools behind the permissions file; every call lands in the access log."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime, timezone

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from ragops.answer.pipeline import AnswerService
from ragops.audit.permissions import ClientGrant, Permissions
from ragops.monitoring.events import EventWriter

INSTRUCTIONS = "Search the ragops knowledge base and read its documents. Results cite the document URI of each passage."


class PermissionsVerifier:
    """The SDK's bearer-auth hook: unknown, revoked or expired tokens get 401 and a line in the access log."""

    def __init__(self, permissions: Permissions, events: EventWriter | None, metrics=None):
        self.permissions = permissions
        self.events = events
        self.metrics = metrics

    async def verify_token(self, token: str) -> AccessToken | None:
        grant = self.permissions.by_token(token)
        reason = ("unknown token" if grant is None else "client is revoked" if grant.revoked
                  else "token expired" if grant.expired() else None)
        if reason:
            if self.metrics is not None:
                self.metrics.mcp_calls.labels(grant.name if grant else "unknown", "-", "denied").inc()
            if self.events:
                self.events.record("mcp", client=grant.name if grant else "unknown", tool="-", decision="denied",
                                   reason=reason, latency_ms=0.0, status="unauthenticated", request_id="", args_hash="")
            return None
        expires = int(grant.expires.timestamp()) if grant.expires else None
        return AccessToken(token=token, client_id=grant.name, scopes=list(grant.tools), expires_at=expires)


class LogMissingToken:
    """ASGI wrapper: a request that reaches /mcp with no bearer token at all is refused (401) and logged too."""

    def __init__(self, app, events: EventWriter | None, metrics=None):
        self.app = app
        self.events = events
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or (self.events is None and self.metrics is None):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        has_token = headers.get(b"authorization", b"").startswith(b"Bearer ")

        async def watch(message):
            if message["type"] == "http.response.start" and message["status"] == 401 and not has_token:
                if self.metrics is not None:
                    self.metrics.mcp_calls.labels("anonymous", "-", "denied").inc()
                if self.events is not None:
                    self.events.record("mcp", client="anonymous", tool="-", decision="denied",
                                       reason="no bearer token", latency_ms=0.0, status="unauthenticated",
                                       request_id="", args_hash="")
            await send(message)

        await self.app(scope, receive, watch)


def _args_hash(arguments: dict) -> str:
    return hashlib.sha256(json.dumps(arguments, sort_keys=True, default=str).encode()).hexdigest()[:32]


def build_mcp_server(service: AnswerService, permissions: Permissions, events: EventWriter | None, metrics=None,
                     *, base_url: str = "http://127.0.0.1:8000", http: bool = True) -> MCPServer:
    """`http=False` builds the stdio server: a local process that its user started, so no token is asked."""
    # Opaque tokens from the permissions file carry no audience, so there is no resource claim to check.
    auth = AuthSettings(issuer_url=base_url, resource_server_url=f"{base_url}/mcp",
                        validate_token_resource=False) if http else None
    verifier = PermissionsVerifier(permissions, events, metrics) if http else None
    server = MCPServer("ragops", instructions=INSTRUCTIONS, token_verifier=verifier, auth=auth)

    def authorize(ctx: Context | None, tool: str, collection: str | None, arguments: dict) -> tuple[str, float]:
        started = time.perf_counter()
        if not http:
            return "stdio", started
        header = (ctx.headers or {}).get("authorization", "") if ctx else ""
        grant: ClientGrant | None = permissions.by_token(header.removeprefix("Bearer ").strip()) if header else None
        allowed, reason = grant.allows(tool, collection) if grant else (False, "no client for this token")
        if not allowed:
            log_call(grant.name if grant else "unknown", tool, "denied", reason, started, "denied", ctx, arguments)
            raise ToolError(f"permission denied: {reason}")
        return grant.name, started

    def log_call(client, tool, decision, reason, started, status, ctx, arguments) -> None:
        if metrics is not None:
            metrics.mcp_calls.labels(client, tool, decision).inc()
        if events is not None:
            request_id = ""
            try:
                request_id = str(ctx.request_id) if ctx else ""
            except ValueError:
                pass
            events.record("mcp", ts=datetime.now(timezone.utc), client=client, tool=tool, decision=decision,
                          reason=reason[:256], latency_ms=(time.perf_counter() - started) * 1000, status=status,
                          request_id=request_id, args_hash=_args_hash(arguments))

    @server.tool(description="Search the knowledge base. Returns the best passages with their document URI and score.")
    async def search_knowledge_base(query: str, k: int = 5, collection: str = "chunks", ctx: Context = None) -> list[dict]:
        arguments = {"query": query, "k": k, "collection": collection}
        client, started = authorize(ctx, "search_knowledge_base", collection, arguments)
        if not 1 <= k <= 20:
            log_call(client, "search_knowledge_base", "allowed", "k out of range", started, "error", ctx, arguments)
            raise ToolError("k must be between 1 and 20")
        result = await service.search(query, user_key=f"mcp:{client}", k=k)
        if result.fallback == "store_unavailable":
            log_call(client, "search_knowledge_base", "allowed", result.fallback, started, "error", ctx, arguments)
            raise ToolError(result.answer)
        log_call(client, "search_knowledge_base", "allowed", "granted", started, "ok", ctx, arguments)
        return [h.to_dict() | {"title": h.title} for h in result.hits] if not result.fallback else []

    @server.tool(description="Read a whole document of the knowledge base by its URI, in reading order.")
    async def get_document(uri: str, collection: str = "chunks", ctx: Context = None) -> dict:
        arguments = {"uri": uri, "collection": collection}
        client, started = authorize(ctx, "get_document", collection, arguments)
        _, _, version = service.route(f"mcp:{client}")
        try:
            chunks = service.retriever(version).store.document(uri)
        except Exception as exc:  # noqa: BLE001 - reported to the client as a tool error, and logged
            log_call(client, "get_document", "allowed", type(exc).__name__, started, "error", ctx, arguments)
            raise ToolError(f"the document could not be read: {exc}") from exc
        if not chunks:
            log_call(client, "get_document", "allowed", "not found", started, "error", ctx, arguments)
            raise ToolError(f"no document {uri!r} in the knowledge base")
        log_call(client, "get_document", "allowed", "granted", started, "ok", ctx, arguments)
        return {"uri": uri, "title": chunks[0].title, "text": "\n\n".join(c.text for c in chunks)}

    return server


def run_stdio(settings) -> None:
    """`ragops mcp`: the same tools over stdio, for a local client that starts this process itself."""
    from ragops.answer.pipeline import AnswerService
    from ragops.monitoring.events import EventWriter

    service = AnswerService(settings)
    events = EventWriter(service.registry)
    try:
        build_mcp_server(service, Permissions(), events, http=False).run("stdio")
    finally:
        events.close()
