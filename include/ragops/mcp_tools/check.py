"""The tool-contract check that the `mcp_tool_contracts` DAG and `ragops tools check` run: list every connected
tool, compare it with its pin, run the contract probes of every tool that is not held, compare its latency with its
history, store it all."""

from __future__ import annotations

import random
import statistics
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

import anyio
from sqlalchemy import func, select

from ragops.errors import RagopsError
from ragops.mcp_client import ToolConfig
from ragops.mcp_tools.contracts import (Contract, ProbeResult, contracts_path, draw, load_contracts, median_latency,
                                       run_probe)
from ragops.mcp_tools.holds import held_reason
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
    held: str | None = None  # why it is held, and so was not probed

    @property
    def contract(self) -> str:
        if self.held:
            return "held"
        if not self.probes:
            return "failed" if self.state.state == "down" else "none"
        return "passed" if all(p.ok for p in self.probes) else "failed"

    @property
    def red(self) -> bool:
        return self.state.state != "unchanged" or self.contract in ("failed", "held")

    def to_dict(self) -> dict:
        return self.state.to_dict() | {"contract": self.contract, "probes": [p.to_dict() for p in self.probes],
                                       "latency_ms": self.latency_ms, "slower": self.slower, "red": self.red,
                                       "held": self.held is not None, "held_reason": self.held}

    def row(self, run: str, ts: datetime) -> McpToolCheck:
        return McpToolCheck(ts=ts, run=run, server_url=self.state.server_url, tool=self.state.tool,
                            state=self.state.state, fingerprint=self.state.fingerprint,
                            diff=[d.to_dict() for d in self.state.changes], contract=self.contract,
                            probes=[p.to_dict() for p in self.probes], latency_ms=self.latency_ms,
                            detail=(self.state.detail or self.held or "")[:2000])


@dataclass
class ToolsReport:
    run: str
    ts: datetime
    tools: list[ToolCheck]

    @property
    def red(self) -> list[ToolCheck]:
        return [t for t in self.tools if t.red]

    def counts(self) -> dict:
        out = {k: 0 for k in ("unchanged", "changed", "missing", "unpinned", "duplicate", "down", "failing", "held",
                              "slower")}
        for t in self.tools:
            out[t.state.state] += 1
            out["failing"] += t.contract == "failed" and t.state.state != "down"
            out["held"] += t.held is not None
            out["slower"] += t.slower is not None
        return out

    def to_dict(self) -> dict:
        return {"run": self.run, "ts": self.ts.isoformat(), "counts": self.counts(),
                "tools": [t.to_dict() for t in self.tools]}


def connected_tools(settings) -> list[ToolConfig]:
    return [ToolConfig.from_dict(t) for t in settings.mcp_tools]


def check_tools(settings, registry: Registry | None = None, configs: list[ToolConfig] | None = None,
                rng: random.Random | None = None, sleep=anyio.sleep) -> ToolsReport:
    """One check of every connected tool; the results are stored in the registry (mcp_tool_checks). A held tool is
    reported, never probed. `rng` and `sleep` draw and space the probes (a test passes its own to stay fast)."""
    registry = registry or Registry(settings.registry_url)
    configs = connected_tools(settings) if configs is None else configs
    rng = rng or random.SystemRandom()  # the server must not be able to predict the draw
    contracts = load_contracts(contracts_path(settings), configs)
    pins, latest = current_pins(registry), latest_checks(registry)
    listed = anyio.run(list_definitions, configs)
    checks = []
    for c in configs:
        state = assess(c, listed[c.key], pins.get(c.key))
        checks.append(ToolCheck(state, held=held_reason(state, latest.get(c.key), pins.get(c.key))))

    async def probe_all() -> None:
        for config, check in zip(configs, checks):
            if check.state.state == "down" or check.held:  # down is reported as down; a held tool is never called
                continue
            for probe in draw(contracts.get(config.key, Contract()), settings.mcp_tool_probes_per_check, rng):
                await sleep(rng.uniform(0, settings.mcp_tool_probe_spacing_s))
                check.probes.append(await run_probe(config, probe))

    anyio.run(probe_all)
    for config, check in zip(configs, checks):
        check.latency_ms = median_latency(check.probes)
        check.slower = _slower(registry, config, check.latency_ms)
    report = ToolsReport(uuid.uuid4().hex, datetime.now(timezone.utc), checks)
    store_checks(registry, report.run, report.ts, checks)
    return report


def store_checks(registry: Registry, run: str, ts: datetime, checks: list[ToolCheck]) -> None:
    with registry.session() as s:
        s.add_all(c.row(run, ts) for c in checks)


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
        return ("changed (" + "; ".join(check.state.summary) + "): review with `ragops tools diff`, then approve the "
                "fingerprint it shows")
    if check.state.state in ("missing", "unpinned", "duplicate", "down"):
        return f"{check.state.state}: {check.state.detail}"
    if check.held:
        return f"held, not probed: {check.held}"
    failed = [p for p in check.probes if not p.ok]
    return "fails its contract: " + "; ".join(f"{p.name}: {', '.join(p.problems)}" for p in failed)
