"""Named points of a refresh where a test can stop the process and kill it (tests/reliability/test_crash_points.py).

With `RAGOPS_PAUSE_AT=<point>` a refresh that reaches the point says so on stderr and blocks until it is killed, so
a test kills it exactly there rather than after a guessed sleep. Unset (always, outside tests), a point costs nothing.
"""

from __future__ import annotations

import os
import sys
import threading

from ragops.errors import ConfigError

POINTS = ("embedding", "index_write", "index_committed")


def pause_point(settings, point: str) -> None:
    if settings.pause_at is None:
        return
    if settings.pause_at not in POINTS:
        raise ConfigError(f"RAGOPS_PAUSE_AT must be one of {', '.join(POINTS)}, not {settings.pause_at!r}")
    if settings.pause_at == point:
        sys.stderr.write(f"ragops: paused at {point} (pid {os.getpid()})\n")
        sys.stderr.flush()
        threading.Event().wait()  # until the test kills this process
