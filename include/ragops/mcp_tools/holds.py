"""Why a connected tool is held: one rule for the serving guard, the contract check and approval, so that no path
calls a tool that another path holds.

A tool is held while its definition is not the approved one (changed, missing, listed twice, never approved), and
while its newest contract check, or a sampled real call, failed for the definition it has now and no person has
approved it since. A held tool is never called, not even by a contract probe: a person's approval is the way back.
"""

from __future__ import annotations

from datetime import datetime, timezone

from ragops.mcp_tools.pins import Pin, ToolState

REASONS = {
    "changed": "the tool changed and awaits review (`ragops tools diff {tool}`)",
    "missing": "the tool is no longer offered by its server and awaits review",
    "unpinned": "the tool has not been approved yet (`ragops tools pin {tool}`)",
    "duplicate": "its server lists the tool more than once, which is drift; it awaits review",
}
FAILED = ("failed", "held")  # a check that skipped a held tool keeps it held


def held_reason(state: ToolState, check, pin: Pin | None) -> str | None:
    """Why the tool must not be called now, or None; `check` is its newest McpToolCheck row (or None)."""
    if state.held:
        return REASONS[state.state].format(tool=state.tool)
    if (state.state == "unchanged" and check is not None and check.contract in FAILED
            and check.fingerprint == state.fingerprint and (pin is None or _utc(check.ts) > _utc(pin.ts))):
        return (f"the tool failed its contract checks (last checked {check.ts:%Y-%m-%d %H:%M} UTC) and awaits "
                f"review (`ragops tools approve {state.tool} --fingerprint {state.fingerprint}`)")
    return None  # a server that is down is not held: calling it fails honestly with the real reason


def _utc(ts: datetime) -> datetime:
    # SQLite hands timestamps back naive (they were written as UTC), Postgres aware
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts
