"""What a person does with connected tools: pin them the first time, look at a change, approve it."""

from __future__ import annotations

import anyio

from ragops.errors import RagopsError
from ragops.mcp_client import ToolConfig
from ragops.mcp_tools.check import connected_tools, latest_checks
from ragops.mcp_tools.holds import held_reason
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


REFUSED = {"down": "the server is down",
           "duplicate": "the server lists it more than once; its owner must fix the server before anything is pinned"}


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
            out["refused"].append(entry | {"why": REFUSED.get(state.state, "review it with `ragops tools diff`, then "
                                                                         "`ragops tools approve --fingerprint`")})
    return out


def diff_tool(settings, registry: Registry, name: str, actor: str, server: str | None = None) -> dict:
    """What approving would pin: the change from the pin (or, for a tool never pinned, the whole definition) and its
    fingerprint, which `approve_tool` must be given."""
    config, state = select_tool(settings, registry, name, server)
    if state.state == "down":
        raise ToolReviewError(f"{name}: {state.state}: {state.detail}")
    record_review(registry, config, "diff", actor, {"state": state.state, "fingerprint": state.fingerprint,
                                                    "changes": len(state.changes)})
    return state.to_dict() | {"definition": state.definition}


def approve_tool(settings, registry: Registry, name: str, actor: str, fingerprint: str | None,
                 server: str | None = None) -> dict:
    """Pin the definition the reviewer saw: `fingerprint` is the one `ragops tools diff` printed, and the server must
    list exactly that definition now, else nothing is pinned. Approving also releases a tool held for its contract.
    Who approved it, and when, is recorded."""
    if not fingerprint:
        raise ToolReviewError(f"{name}: approving needs --fingerprint F, the fingerprint `ragops tools diff {name}` "
                              "showed for the definition you reviewed")
    config, state = select_tool(settings, registry, name, server)
    if state.state == "down":
        raise ToolReviewError(f"{name}: the server is down ({state.detail}); nothing to approve")
    if state.state == "missing":
        raise ToolReviewError(f"{name}: the server no longer lists this tool; remove it from RAGOPS_MCP_TOOLS")
    if state.state == "duplicate":
        raise ToolReviewError(f"{name}: {state.detail}; nothing can be approved until its owner fixes the server")
    if state.fingerprint != fingerprint.strip().lower():
        raise ToolReviewError(f"{name}: the server now lists the definition {state.fingerprint}, not the {fingerprint} "
                              f"you reviewed; nothing was pinned. Review it again with `ragops tools diff {name}`")
    pins = current_pins(registry)
    if state.state == "unchanged" and not held_reason(state, latest_checks(registry).get(config.key), pins.get(config.key)):
        return state.to_dict() | {"approved": False, "why": "the live definition matches its pin"}
    pin = record_pin(registry, config, state.definition, "pin" if state.state == "unpinned" else "approve", actor)
    return state.to_dict() | {"approved": True, "fingerprint": pin.fingerprint, "actor": actor}
