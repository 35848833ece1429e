"""The serving side: which connected tools the assistant may call right now.

At start-up and every `mcp_tool_check_interval_s` after, off the request path, the guard lists the connected
tools, compares them with their pins and reads the newest contract checks. A tool that changed, disappeared, is
listed twice, was never approved, or failed its contract since its last approval is held (`mcp_tools.holds`): the
assistant does not call it and says why.
"""

from __future__ import annotations

import logging
from typing import Callable

import anyio

from ragops.mcp_client import ToolConfig
from ragops.mcp_tools.check import latest_checks
from ragops.mcp_tools.holds import held_reason
from ragops.mcp_tools.listing import list_definitions
from ragops.mcp_tools.pins import assess, current_pins
from ragops.mcp_tools.sampling import LiveSampler, record_violation
from ragops.registry import Registry

log = logging.getLogger(__name__)


class ToolGuard:
    def __init__(self, registry: Registry | Callable[[], Registry], tools: list[ToolConfig], interval_s: float = 300.0,
                 on_held: Callable[[str, bool], None] | None = None, on_blocked: Callable[[str], None] | None = None,
                 retry_s: float | None = None, sampler: LiveSampler | None = None):
        # a callable gives the registry when it can be read (the app's backend), raising StoreUnavailable until then
        self._registry = registry if callable(registry) and not isinstance(registry, Registry) else (lambda: registry)
        self.tools = tools
        self.interval_s = interval_s
        self.retry_s = min(retry_s, interval_s) if retry_s else interval_s  # the pace until a first check succeeds
        self.on_held = on_held or (lambda tool, held: None)
        self.on_blocked = on_blocked or (lambda tool: None)
        self.sampler = sampler
        self.held: dict[tuple[str, str], str] = {}
        self.fingerprints: dict[tuple[str, str], str] = {}  # of the definitions listed at the last check
        self.checked = False

    def blocked(self, config: ToolConfig) -> str | None:
        """Why the assistant must not call this tool now, or None. Until the first check, every tool is held."""
        reason = self.held.get(config.key) if self.checked else "the tool has not been checked against its pin yet"
        if reason:
            self.on_blocked(config.tool)
        return reason

    async def observe(self, config: ToolConfig, result) -> str | None:
        """Hold a sampled real result to the tool's contract: a violation holds the tool at once and is stored as a
        failed check, so every replica and the next check hold it too. Returns why the result must not be used."""
        problems = self.sampler.problems(config, result.text, result.structured) if self.sampler else None
        if not problems:
            return None
        reason = "a sampled answer from the tool broke its contract; the tool is held until reviewed"
        log.warning("MCP tool %s at %s is held: a sampled real call broke its contract: %s", config.tool, config.url,
                    "; ".join(problems))
        if config.key not in self.held:
            self.held[config.key] = reason
            self.on_held(config.tool, True)
        fingerprint = self.fingerprints.get(config.key, "")

        def record():  # off the event loop, as in refresh
            record_violation(self._registry(), config, fingerprint, problems, result.latency_ms)

        try:
            await anyio.to_thread.run_sync(record)
        except Exception:  # noqa: BLE001 - the hold is in force here already; a registry blip must not fail the answer
            log.exception("recording the contract violation of MCP tool %s failed; it stays held in this replica",
                          config.tool)
        return reason

    async def refresh(self) -> dict[tuple[str, str], str]:
        """One check of every tool: its live definition against its pin, and its newest contract check."""
        listed = await list_definitions(self.tools)
        def read():  # off the event loop: getting the registry may build the service, reading it may block
            registry = self._registry()
            return current_pins(registry), latest_checks(registry)

        pins, checks = await anyio.to_thread.run_sync(read)
        held = {}
        for config in self.tools:
            state = assess(config, listed[config.key], pins.get(config.key))
            self.fingerprints[config.key] = state.fingerprint
            if reason := held_reason(state, checks.get(config.key), pins.get(config.key)):
                held[config.key] = reason
        for config in self.tools:
            was, now = config.key in self.held, config.key in held
            if was != now or not self.checked:
                self.on_held(config.tool, now)
                if now:
                    log.warning("MCP tool %s at %s is held: %s", config.tool, config.url, held[config.key])
                elif self.checked:
                    log.info("MCP tool %s at %s is no longer held", config.tool, config.url)
        self.held, self.checked = held, True
        return held

    async def start(self) -> None:
        """The check at start-up; a failure leaves every tool held until a later check succeeds."""
        try:
            await self.refresh()
        except Exception:  # noqa: BLE001 - a registry blip must not stop the app from starting
            log.exception("checking the connected MCP tools at start-up failed; they stay held until the next check")

    async def run(self) -> None:
        """Re-check every interval until cancelled (sooner until a first check succeeded, as every tool is held until
        then); a failed check keeps the last known state."""
        while True:
            await anyio.sleep(self.interval_s if self.checked else self.retry_s)
            try:
                await self.refresh()
            except Exception:  # noqa: BLE001 - the guard must outlive a registry blip; the next round retries
                log.exception("checking the connected MCP tools failed; keeping the last known state")
