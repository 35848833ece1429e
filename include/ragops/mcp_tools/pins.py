"""Pins in the registry, and the state of each connected tool against its pin."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select

from ragops.mcp_client import ToolConfig
from ragops.mcp_tools.definitions import Change, diff, fingerprint, summarize
from ragops.mcp_tools.listing import Listed
from ragops.registry import Registry
from ragops.registry.models import McpToolPin, McpToolReview

HELD_STATES = ("changed", "missing", "unpinned", "duplicate")


@dataclass
class Pin:
    server_url: str
    tool: str
    fingerprint: str
    definition: dict
    action: str
    actor: str
    ts: datetime


@dataclass
class ToolState:
    server_url: str
    tool: str
    state: str  # unchanged|changed|missing|unpinned|duplicate|down
    fingerprint: str = ""
    changes: list[Change] = field(default_factory=list)
    detail: str = ""
    definition: dict | None = None

    @property
    def held(self) -> bool:
        return self.state in HELD_STATES

    @property
    def summary(self) -> list[str]:
        return summarize(self.changes)

    def to_dict(self) -> dict:
        return {"server_url": self.server_url, "tool": self.tool, "state": self.state, "held": self.held,
                "fingerprint": self.fingerprint, "detail": self.detail, "summary": self.summary,
                "diff": [c.to_dict() for c in self.changes]}


def current_pins(registry: Registry) -> dict[tuple[str, str], Pin]:
    """The pin in force per (server, tool): the newest pin or approval."""
    with registry.session() as s:
        newest = (select(McpToolPin.server_url, McpToolPin.tool, func.max(McpToolPin.id).label("id"))
                  .group_by(McpToolPin.server_url, McpToolPin.tool).subquery())
        rows = s.scalars(select(McpToolPin).join(newest, McpToolPin.id == newest.c.id)).all()
        return {(r.server_url, r.tool): Pin(r.server_url, r.tool, r.fingerprint, dict(r.definition), r.action, r.actor,
                                            r.ts) for r in rows}


def record_pin(registry: Registry, config: ToolConfig, definition: dict, action: str, actor: str) -> Pin:
    with registry.session() as s:
        row = McpToolPin(server_url=config.url, tool=config.tool, fingerprint=fingerprint(definition),
                         definition=definition, action=action, actor=actor)
        s.add(row)
        s.add(McpToolReview(server_url=config.url, tool=config.tool, action=action, actor=actor,
                            detail={"fingerprint": row.fingerprint}))
        s.flush()
        return Pin(row.server_url, row.tool, row.fingerprint, definition, action, actor, row.ts)


def record_review(registry: Registry, config: ToolConfig, action: str, actor: str, detail: dict) -> None:
    with registry.session() as s:
        s.add(McpToolReview(server_url=config.url, tool=config.tool, action=action, actor=actor, detail=detail))


def assess(config: ToolConfig, listed: Listed, pin: Pin | None) -> ToolState:
    """Where a tool stands: a server that is down is `down` (not changed); a tool it no longer lists is `missing`; a
    name it lists more than once is `duplicate`, whatever the copies are, since which one a client keeps is not ours
    to know."""
    url, tool = config.key
    if listed.down is not None:
        return ToolState(url, tool, "down", detail=listed.down)
    if listed.duplicated:
        prints = ", ".join(fingerprint(d)[:12] for d in listed.definitions)
        return ToolState(url, tool, "duplicate", detail=f"the server lists {tool!r} {len(listed.definitions)} times "
                                                         f"(fingerprints {prints}): drift, never pinned")
    if listed.definition is None:
        return ToolState(url, tool, "missing", detail=f"the server no longer lists {tool!r}")
    now = fingerprint(listed.definition)
    if pin is None:
        return ToolState(url, tool, "unpinned", now, detail="not approved yet: run `ragops tools pin`",
                         definition=listed.definition)
    if now == pin.fingerprint:
        return ToolState(url, tool, "unchanged", now, definition=listed.definition)
    changes = diff(pin.definition, listed.definition)
    return ToolState(url, tool, "changed", now, changes, f"changed since {pin.action} by {pin.actor} on {pin.ts:%Y-%m-%d}",
                     listed.definition)
