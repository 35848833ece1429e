"""What a person does with connected tools: pin them the first time, look at a change, approve it."""

from __future__ import annotations

import anyio

from ragops.errors import RagopsError
from ragops.mcp_client import ToolConfig
from ragops.mcp_tools.check import connected_tools
from ragops.mcp_tools.listing import list_definitions
from ragops.mcp_tools.pins import ToolState, assess, current_pins, record_pin, record_review
from ragops.registry import Registry


class ToolReviewError(RagopsError):
    code = "tool_review_error"


def tool_states(settings, registry: Registry, configs: list[ToolConfig] | None = None) -> list[tuple[ToolConfig, ToolState]]:
    configs = connected_tools(settings) if configs is None else configs
    if not configs:
        raise ToolReviewError("no MCP tools are connected (RAGOPS_MCP_TOOLS is empty)")
    listed = anyio.run(list_definitions, configs)
    pins = current_pins(registry)
    return [(c, assess(c, listed[c.key], pins.get(c.key))) for c in configs]


def select_tool(settings, registry: Registry, name: str, server: str | None = None) -> tuple[ToolConfig, ToolState]:
    chosen = [(c, st) for c, st in tool_states(settings, registry) if c.tool == name and server in (None, c.url)]
    if not chosen:
        raise ToolReviewError(f"{name!r} is not a connected tool (RAGOPS_MCP_TOOLS)")
    if len(chosen) > 1:
        raise ToolReviewError(f"{name!r} is offered by several servers; say which with --server "
                              f"({', '.join(c.url for c, _ in chosen)})")
    return chosen[0]


def pin_tools(settings, registry: Registry, names: list[str], actor: str) -> dict:
    """Record the first approval of every connected tool not pinned yet; a changed tool must go through approve."""
    states = [(c, st) for c, st in tool_states(settings, registry) if not names or c.tool in names]
    unknown = sorted(set(names) - {c.tool for c, _ in states})
    if unknown:
        raise ToolReviewError(f"not connected tools: {', '.join(unknown)}")
    out = {"pinned": [], "unchanged": [], "refused": [], "definitions": {}}
    for config, state in states:
        entry = {"tool": config.tool, "server_url": config.url, "state": state.state, "detail": state.detail}
        if state.definition is not None:
            out["definitions"][f"{config.tool} @ {config.url}"] = state.definition
        if state.state == "unpinned":
            out["pinned"].append(entry | {"fingerprint": record_pin(registry, config, state.definition, "pin", actor).fingerprint})
        elif state.state == "unchanged":
            out["unchanged"].append(entry)
        else:
            out["refused"].append(entry | {"why": "review it with `ragops tools diff`, then `ragops tools approve`"
                                           if state.state in ("changed", "missing") else "the server is down"})
    return out


def diff_tool(settings, registry: Registry, name: str, actor: str, server: str | None = None) -> dict:
    config, state = select_tool(settings, registry, name, server)
    if state.state in ("down", "unpinned"):
        raise ToolReviewError(f"{name}: {state.state}: {state.detail}")
    record_review(registry, config, "diff", actor, {"state": state.state, "fingerprint": state.fingerprint,
                                                    "changes": len(state.changes)})
    return state.to_dict()


def approve_tool(settings, registry: Registry, name: str, actor: str, server: str | None = None) -> dict:
    """Re-pin the tool's live definition; who approved it, and when, is recorded."""
    config, state = select_tool(settings, registry, name, server)
    if state.state == "down":
        raise ToolReviewError(f"{name}: the server is down ({state.detail}); nothing to approve")
    if state.state == "missing":
        raise ToolReviewError(f"{name}: the server no longer lists this tool; remove it from RAGOPS_MCP_TOOLS")
    if state.state == "unchanged":
        return state.to_dict() | {"approved": False, "why": "the live definition matches its pin"}
    pin = record_pin(registry, config, state.definition, "approve" if state.state == "changed" else "pin", actor)
    return state.to_dict() | {"approved": True, "fingerprint": pin.fingerprint, "actor": actor}
