"""The tool-contract check that the `mcp_tool_contracts` DAG and `ragops tools check` run: list every connected
tool, compare it with its pin, run its contract probes, compare its latency with its history, store it all."""

from __future__ import annotations

import statistics
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

import anyio
from sqlalchemy import func, select

from ragops.errors import RagopsError
from ragops.mcp_client import ToolConfig
from ragops.mcp_tools.contracts import ProbeResult, contracts_path, load_contracts, median_latency, run_probe
from ragops.mcp_tools.listing import list_definitions
from ragops.mcp_tools.pins import ToolState, assess, current_pins
from ragops.registry import Registry
from ragops.registry.models import McpToolCheck

HISTORY_RUNS = 8
SLOWER_RATIO, SLOWER_MS = 2.0, 250.0  # slower than history: both twice the median and 250 ms more


class ToolsNeedReview(RagopsError):
    """A connected tool changed, is not approved, is down or fails its contract."""

    code = "tools_need_review"
    exit_code = 7


@dataclass
class ToolCheck:
    state: ToolState
    probes: list[ProbeResult] = field(default_factory=list)
    latency_ms: float | None = None
    slower: str | None = None  # why it counts as slower than its recent history

    @property
    def contract(self) -> str:
        if not self.probes:
            return "failed" if self.state.state == "down" else "none"
        return "passed" if all(p.ok for p in self.probes) else "failed"

    @property
    def red(self) -> bool:
        return self.state.state in ("changed", "missing", "unpinned", "down") or self.contract == "failed"

    def to_dict(self) -> dict:
        return self.state.to_dict() | {"contract": self.contract, "probes": [p.to_dict() for p in self.probes],
                                       "latency_ms": self.latency_ms, "slower": self.slower, "red": self.red}


@dataclass
class ToolsReport:
    run: str
    ts: datetime
    tools: list[ToolCheck]

    @property
    def red(self) -> list[ToolCheck]:
        return [t for t in self.tools if t.red]

    def counts(self) -> dict:
        out = {k: 0 for k in ("unchanged", "changed", "missing", "unpinned", "down", "failing", "slower")}
        for t in self.tools:
            out[t.state.state] += 1
            out["failing"] += t.contract == "failed" and t.state.state != "down"
            out["slower"] += t.slower is not None
        return out

    def to_dict(self) -> dict:
        return {"run": self.run, "ts": self.ts.isoformat(), "counts": self.counts(),
                "tools": [t.to_dict() for t in self.tools]}


def connected_tools(settings) -> list[ToolConfig]:
    return [ToolConfig.from_dict(t) for t in settings.mcp_tools]


def check_tools(settings, registry: Registry | None = None, configs: list[ToolConfig] | None = None) -> ToolsReport:
    """One check of every connected tool; the results are stored in the registry (mcp_tool_checks)."""
    registry = registry or Registry(settings.registry_url)
    configs = connected_tools(settings) if configs is None else configs
    probes = load_contracts(contracts_path(settings), configs)
    pins = current_pins(registry)
    listed = anyio.run(list_definitions, configs)
    checks = [ToolCheck(assess(c, listed[c.key], pins.get(c.key))) for c in configs]

    async def probe_all() -> None:
        for config, check in zip(configs, checks):
            if check.state.state != "down":  # a server that is down is reported as down, not probed
                check.probes = [await run_probe(config, p) for p in probes.get(config.key, [])]

    anyio.run(probe_all)
    for config, check in zip(configs, checks):
        check.latency_ms = median_latency(check.probes)
        check.slower = _slower(registry, config, check.latency_ms)
    report = ToolsReport(uuid.uuid4().hex, datetime.now(timezone.utc), checks)
    with registry.session() as s:
        s.add_all(McpToolCheck(ts=report.ts, run=report.run, server_url=c.state.server_url, tool=c.state.tool,
                               state=c.state.state, fingerprint=c.state.fingerprint,
                               diff=[d.to_dict() for d in c.state.changes], contract=c.contract,
                               probes=[p.to_dict() for p in c.probes], latency_ms=c.latency_ms,
                               detail=c.state.detail[:2000]) for c in checks)
    return report


def _slower(registry: Registry, config: ToolConfig, latency_ms: float | None) -> str | None:
    if latency_ms is None:
        return None
    with registry.session() as s:
        history = s.scalars(select(McpToolCheck.latency_ms).where(
            McpToolCheck.server_url == config.url, McpToolCheck.tool == config.tool, McpToolCheck.contract == "passed",
            McpToolCheck.latency_ms.is_not(None)).order_by(McpToolCheck.id.desc()).limit(HISTORY_RUNS)).all()
    if len(history) < 3:
        return None  # too little history to call anything slow
    usual = statistics.median(history)
    if latency_ms > SLOWER_RATIO * usual and latency_ms > usual + SLOWER_MS:
        return f"median probe {latency_ms:.0f} ms against {usual:.0f} ms over the last {len(history)} checks"
    return None


def latest_checks(registry: Registry) -> dict[tuple[str, str], McpToolCheck]:
    """The newest stored check per (server, tool), for the serving guard, the audit and the RAG Ops page."""
    with registry.session() as s:
        newest = (select(func.max(McpToolCheck.id).label("id"))
                  .group_by(McpToolCheck.server_url, McpToolCheck.tool).subquery())
        rows = s.scalars(select(McpToolCheck).join(newest, McpToolCheck.id == newest.c.id)).all()
        return {(r.server_url, r.tool): r for r in rows}


def fail_on_problems(report: ToolsReport) -> None:
    red = report.red
    if red:
        raise ToolsNeedReview("; ".join(f"{t.state.tool}: {_why(t)}" for t in red))


def _why(check: ToolCheck) -> str:
    if check.state.state == "changed":
        return "changed (" + "; ".join(check.state.summary) + "): review with `ragops tools diff`, then approve"
    if check.state.state in ("missing", "unpinned", "down"):
        return f"{check.state.state}: {check.state.detail}"
    failed = [p for p in check.probes if not p.ok]
    return "fails its contract: " + "; ".join(f"{p.name}: {', '.join(p.problems)}" for p in failed)
