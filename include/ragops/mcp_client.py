"""The MCP client: a session over streamable HTTP, one bounded tool call, and reading its result.

It sits below both `answer` (which calls the configured tools for every question) and `mcp_tools` (which lists,
pins and probes them), so neither has to reach into the other for it.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio

from ragops.config import mask_url, mask_urls
from ragops.errors import ToolFailed
from ragops.logs import quiet_libraries


@dataclass
class ToolConfig:
    """One tool the assistant calls for every question; the question fills `query_arg`.

    `url` is the server as it is shown and stored (pins, checks, reports, logs): credentials masked. Only a connection
    reads `connect_url`, the URL as configured, so a password or token in it goes nowhere else.
    """

    url: str
    tool: str
    token: str | None = None
    arguments: dict = field(default_factory=dict)
    query_arg: str = "query"
    timeout_s: float = 5.0
    connect_url: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        self.connect_url = self.connect_url or self.url
        self.url = mask_url(self.url)

    @property
    def key(self) -> tuple[str, str]:
        """(server URL, tool name): how pins and checks name a connected tool."""
        return self.url, self.tool

    @classmethod
    def from_dict(cls, data: dict) -> "ToolConfig":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


class ServerHttpError(Exception):
    """The tool's server answered a request with an HTTP error status."""


@asynccontextmanager
async def open_session(url: str, token: str | None = None):
    """An MCP client session over streamable HTTP, with the bearer token when one is configured.

    The MCP client turns an HTTP error status into "Server returned an error response" inside task groups; the
    status is noted as the response arrives, so a failure names it (ServerHttpError).
    """
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    quiet_libraries()
    statuses: list[str] = []

    async def note_status(response) -> None:
        if response.request.method == "POST" and response.is_error:
            statuses.append(f"HTTP {response.status_code} {response.reason_phrase} from {mask_url(str(response.url))}")

    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"} if token else None)
    http.event_hooks["response"].append(note_status)
    try:
        async with http, Client(streamable_http_client(url, http_client=http)) as client:
            yield client
    except Exception as exc:
        if statuses:
            raise ServerHttpError(statuses[-1]) from exc
        raise


async def invoke(config: ToolConfig, arguments: dict):
    """Call the tool with `arguments` within its timeout; returns the raw CallToolResult, or raises ToolFailed."""
    try:
        with anyio.fail_after(config.timeout_s):
            async with open_session(config.connect_url, config.token) as client:
                return await client.call_tool(config.tool, arguments)
    except TimeoutError:
        raise ToolFailed(config.tool, f"no answer within {config.timeout_s:g} s") from None
    except Exception as exc:  # noqa: BLE001 - transport, protocol and HTTP errors all mean "the tool failed"
        raise ToolFailed(config.tool, failure(exc)) from exc


def failure(exc: BaseException) -> str:
    """What went wrong, for the log and the records: the cause inside the client's task groups (an HTTP 500 arrives
    as "ExceptionGroup: unhandled errors in a TaskGroup"), with any URL in it masked."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {mask_urls(str(exc))[:200]}"


def result_text(result) -> str:
    return "\n".join(getattr(c, "text", "") for c in (result.content or []))


def result_is_error(result) -> bool:
    return bool(getattr(result, "is_error", False) or getattr(result, "isError", False))
