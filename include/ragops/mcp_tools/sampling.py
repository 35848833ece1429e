"""Live sampling: a share of the assistant's real tool calls is held to the tool's contract too.

Probes alone can be fooled: a server that recognises a probe answers it correctly and lies to everyone else. So a
random share (RAGOPS_MCP_TOOL_SAMPLE_RATE) of real answer-time results is checked against the tool-level `expect` of
its contract. A violation is stored as a failed contract check, which holds the tool (`mcp_tools.holds`) until a
person approves it again.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timezone

from ragops.mcp_client import ToolConfig
from ragops.mcp_tools.check import ToolCheck, store_checks
from ragops.mcp_tools.contracts import MAX_TEXT, Contract, ProbeResult, check, contracts_path, load_contracts
from ragops.mcp_tools.pins import ToolState
from ragops.registry import Registry

SAMPLE = "live sample"  # the name a sampled real call has among a check's probes


class LiveSampler:
    def __init__(self, contracts: dict[tuple[str, str], Contract], rate: float, rng: random.Random | None = None):
        self.expect = {key: c.expect for key, c in contracts.items() if c.expect}
        self.rate = rate
        self.rng = rng or random.SystemRandom()  # which calls are checked must not be predictable

    @classmethod
    def from_settings(cls, settings, tools: list[ToolConfig]) -> "LiveSampler":
        return cls(load_contracts(contracts_path(settings), tools), settings.mcp_tool_sample_rate)

    def problems(self, config: ToolConfig, text: str, structured) -> list[str] | None:
        """None when this result is not sampled (or the tool has no tool-level expectation), else what it breaks."""
        expect = self.expect.get(config.key)
        if not expect or self.rng.random() >= self.rate:
            return None
        return check(expect, text[:MAX_TEXT], structured, False)


def record_violation(registry: Registry, config: ToolConfig, fingerprint: str, problems: list[str],
                     latency_ms: float) -> None:
    """Store a sampled real call that broke the contract as a failed check of the definition it was served under."""
    sampled = ToolCheck(ToolState(config.url, config.tool, "unchanged", fingerprint,
                                  detail="a sampled real call broke the tool's contract"),
                        [ProbeResult(SAMPLE, False, round(latency_ms, 2), problems)])
    store_checks(registry, f"live-{uuid.uuid4().hex}", datetime.now(timezone.utc), [sampled])
