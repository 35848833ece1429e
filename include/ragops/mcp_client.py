"""The MCP client: a session over streamable HTTP, one bounded tool call, and reading its result.

It sits below both `answer` (which calls the configured tools for every question) and `mcp_tools` (which lists,
pins and probes them), so neither has to reach into the other for it.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio

from ragops.errors import ToolFailed


@dataclass
class ToolConfig:
    """One tool the assistant calls for every question; the question fills `query_arg`."""

    url: str
    tool: str
    token: str | None = None
    arguments: dict = field(default_factory=dict)
    query_arg: str = "query"
    timeout_s: float = 5.0

    @property
    def key(self) -> tuple[str, str]:
        """(server URL, tool name): how pins and checks name a connected tool."""
        return self.url, self.tool

    @classmethod
    def from_dict(cls, data: dict) -> "ToolConfig":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@asynccontextmanager
async def open_session(url: str, token: str | None = None):
    """An MCP client session over streamable HTTP, with the bearer token when one is configured."""
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"} if token else None)
    async with http, Client(streamable_http_client(url, http_client=http)) as client:
        yield client


async def invoke(config: ToolConfig, arguments: dict):
    """Call the tool with `arguments` within its timeout; returns the raw CallToolResult, or raises ToolFailed."""
    try:
        with anyio.fail_after(config.timeout_s):
            async with open_session(config.url, config.token) as client:
                return await client.call_tool(config.tool, arguments)
    except TimeoutError:
        raise ToolFailed(config.tool, f"no answer within {config.timeout_s:g} s") from None
    except Exception as exc:  # noqa: BLE001 - transport, protocol and HTTP errors all mean "the tool failed"
        raise ToolFailed(config.tool, f"{type(exc).__name__}: {str(exc)[:200]}") from exc


def result_text(result) -> str:
    return "\n".join(getattr(c, "text", "") for c in (result.content or []))


def result_is_error(result) -> bool:
    return bool(getattr(result, "is_error", False) or getattr(result, "isError", False))
