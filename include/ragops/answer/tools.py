"""Calls from the assistant to MCP tools over streamable HTTP, each bounded by a timeout."""

from __future__ import annotations

import time
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

    @classmethod
    def from_dict(cls, data: dict) -> "ToolConfig":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class ToolResult:
    tool: str
    text: str
    latency_ms: float


async def call_tool(config: ToolConfig, question: str) -> ToolResult:
    """Call one MCP tool; any failure, error result or timeout becomes ToolFailed with a readable reason."""
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    headers = {"Authorization": f"Bearer {config.token}"} if config.token else None
    arguments = dict(config.arguments) | {config.query_arg: question}
    started = time.perf_counter()
    try:
        with anyio.fail_after(config.timeout_s):
            http = create_mcp_http_client(headers=headers)
            async with http, Client(streamable_http_client(config.url, http_client=http)) as client:
                result = await client.call_tool(config.tool, arguments)
    except TimeoutError:
        raise ToolFailed(config.tool, f"no answer within {config.timeout_s:g} s") from None
    except Exception as exc:  # noqa: BLE001 - transport, protocol and HTTP errors all mean "the tool failed"
        raise ToolFailed(config.tool, f"{type(exc).__name__}: {str(exc)[:200]}") from exc
    text = "\n".join(getattr(c, "text", "") for c in (result.content or []))
    if getattr(result, "is_error", False) or getattr(result, "isError", False):
        raise ToolFailed(config.tool, text[:200] or "the tool returned an error")
    return ToolResult(config.tool, text, (time.perf_counter() - started) * 1000)
