"""Named points of a refresh where a test can stop the process and kill it (tests/reliability/test_crash_points.py).

With `RAGOPS_PAUSE_AT=<point>` a refresh that reaches the point says so on stderr and blocks until it is killed, so
a test kills it exactly there rather than after a guessed sleep. Unset (always, outside tests), a point costs nothing.
"""

from __future__ import annotations

import os
import sys
import threading


def pause_point(settings, point: str) -> None:
    """`point` is one of Settings.pause_at's values: embedding, index_write, index_committed."""
    if settings.pause_at == point:
        sys.stderr.write(f"ragops: paused at {point} (pid {os.getpid()})\n")
        sys.stderr.flush()
        threading.Event().wait()  # until the test kills this process
