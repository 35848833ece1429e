"""Access-log rows for the MCP refusals a flood repeats (failed authentication, rate limiting), aggregated per window.

The first refusal of a kind (client, tool, address, reason) in a window is written at once, so every distinct failure
is visible; its repeats in that window are only counted, and written as one summary row when the window ends (at the
first refusal or authentication after it, or at shutdown). N identical refusals in a window write two rows, not N.
Past `max_kinds` kinds in one window the rest share one overflow kind, so rotating addresses cannot bloat the log.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Callable

from ragops.monitoring.events import EventWriter

OVERFLOW = ("*", "-", "*", "other refusals")


class RefusalLog:
    def __init__(self, events: EventWriter | None, window_s: float = 60.0, max_kinds: int = 1000,
                 clock: Callable[[], float] = time.time):
        self.events, self.window_s, self.max_kinds, self.clock = events, window_s, max_kinds, clock
        self._started = clock()
        self._repeats: dict[tuple[str, str, str, str, str], int] = {}  # kind + status -> repeats not yet written

    def record(self, client: str, tool: str, address: str, reason: str, status: str) -> None:
        """One refusal: a row if it is the window's first of its kind, else a count."""
        self.tick()
        key = (client, tool, address, reason, status)
        if key not in self._repeats and len(self._repeats) >= self.max_kinds:
            key = OVERFLOW + (status,)
        if key in self._repeats:
            self._repeats[key] += 1
            return
        self._repeats[key] = 0
        self._write(key, f"{key[3]} from {key[2]}")

    def tick(self) -> None:
        """End the window when its time is up (cheap: called on every authentication)."""
        if self.clock() - self._started >= self.window_s:
            self.flush()

    def flush(self) -> None:
        """Write the summary rows of the window and start a new one."""
        since = datetime.fromtimestamp(self._started, timezone.utc).strftime("%H:%M:%S")
        for key, repeats in self._repeats.items():
            if repeats:
                self._write(key, f"{key[3]} from {key[2]}: {repeats} more in the {self.window_s:g} s from {since} UTC")
        self._repeats.clear()
        self._started = self.clock()

    def _write(self, key: tuple[str, str, str, str, str], reason: str) -> None:
        if self.events is not None:
            self.events.record("mcp", client=key[0], tool=key[1], decision="denied", reason=reason, latency_ms=0.0,
                               status=key[4], request_id="", args_hash="")
