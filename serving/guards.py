"""ASGI guards in front of the app: request ids, a bounded request body, and /mcp served without a redirect.

Plain ASGI rather than Starlette's BaseHTTPMiddleware: a refused request (429, 413) should cost next to nothing.
"""

from __future__ import annotations

import json
import time
from typing import Callable

from serving.callers import request_id

Refused = Callable[[dict, str], None]


class RequestIds:
    """Every request gets an id (the caller's X-Request-ID when sane) in `request.state`, echoed in the response."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        header = dict(scope.get("headers") or []).get(b"x-request-id")
        rid = request_id(header.decode("latin-1") if header else None)
        state = scope.setdefault("state", {})
        state.update(request_id=rid, started=time.perf_counter(), caller=None)  # serving.callers.Caller, once identified

        async def with_id(message):
            if message["type"] == "http.response.start":
                message = dict(message, headers=list(message.get("headers") or []) + [(b"x-request-id", rid.encode())])
            await send(message)

        await self.app(scope, receive, with_id)


class BodyLimit:
    """Refuse a body over `max_bytes` with 413 JSON before it is read whole: a declared Content-Length is checked
    first; a chunked body is read only until it passes the limit."""

    def __init__(self, app, max_bytes: int, on_refused: Refused | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.on_refused = on_refused

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit() or int(declared) > self.max_bytes:
                return await self._refuse(scope, send, headers)
            return await self.app(scope, receive, send)
        if headers.get(b"transfer-encoding") is None:
            return await self.app(scope, receive, send)
        messages, size = [], 0
        while True:
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                return await self._refuse(scope, send, headers)
            if message["type"] != "http.request" or not message.get("more_body"):
                break

        async def replay():
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope, send, headers: dict) -> None:
        rid = request_id(headers.get(b"x-request-id", b"").decode("latin-1") or None)
        if self.on_refused is not None:
            self.on_refused(scope, rid)
        body = error_body("payload_too_large", f"the request body is over the limit of {self.max_bytes} bytes", rid)
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"x-request-id", rid.encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def error_body(code: str, message: str, rid: str) -> bytes:
    """The API's JSON error envelope (serving.schemas.ErrorBody), for refusals made below the app."""
    return json.dumps({"error": {"code": code, "message": message}, "request_id": rid}).encode()


class McpPath:
    """Serve /mcp itself (not only /mcp/) without a redirect round trip; attributes pass through to the app."""

    def __init__(self, app, inner):
        self.app = app  # the FastAPI app (tests reach app.state through this wrapper)
        self.inner = inner  # the full ASGI stack around it

    def __getattr__(self, name):
        return getattr(self.app, name)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] == "/mcp":
            scope = dict(scope, path="/mcp/", raw_path=b"/mcp/")
        await self.inner(scope, receive, send)
