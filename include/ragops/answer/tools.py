"""The assistant's call to an MCP tool for a question: the question fills the tool's query argument, and an
error result counts as a failure. The client itself (session, invoke, the tool config) is `ragops.mcp_client`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ragops.errors import ToolFailed
from ragops.mcp_client import ToolConfig, invoke, result_is_error, result_text


@dataclass
class ToolResult:
    tool: str
    text: str
    latency_ms: float
    structured: Any = None  # the structured content, which a sampled call's contract may check


async def call_tool(config: ToolConfig, question: str) -> ToolResult:
    """Call one MCP tool with the question; any failure, error result or timeout becomes ToolFailed."""
    started = time.perf_counter()
    result = await invoke(config, dict(config.arguments) | {config.query_arg: question})
    text = result_text(result)
    if result_is_error(result):
        raise ToolFailed(config.tool, text[:200] or "the tool returned an error")
    return ToolResult(config.tool, text, (time.perf_counter() - started) * 1000,
                      getattr(result, "structured_content", None))
