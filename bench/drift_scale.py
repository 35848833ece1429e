"""The quality-drift check's time and peak memory on a large generated request_events table (SQLite, a temp home).

    .venv/bin/python bench/drift_scale.py [ROWS (default 1000000)]

ROWS answers from 5,000 users over 8 days (10% refused), then one check over the last 24 h against the 7 days
before: prints the rows read and the check's seconds and peak RSS (docs/reliability.md, issues 23 and 24 attacked).
"""

from __future__ import annotations

import random
import resource
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone

from sqlalchemy import insert

from ragops.config import Settings
from ragops.monitoring import drift
from ragops.registry import Registry
from ragops.registry.models import RequestEvent


class Quiet:
    def send(self, message) -> bool:
        return True


def main(n: int) -> None:
    settings = Settings(home=tempfile.mkdtemp(prefix="drift-scale-"), source="file:///nonexistent")
    registry = Registry(settings.registry_url)
    t0, span, rng = datetime(2026, 11, 2, tzinfo=timezone.utc), timedelta(days=8), random.Random(1)
    with registry.session() as s:
        for b in range(0, n, 50_000):
            s.execute(insert(RequestEvent), [dict(
                ts=t0 + span * (i / n), request_id=f"r{i}", endpoint="/v1/ask", user_hash=f"u{rng.randrange(5000)}",
                variant="stable", latency_ms=20.0, status=200, fallback="no_results" if rng.random() < .1 else None,
                synthetic=False, verified=True, question="q", similarity=rng.gauss(.55, .05),
                coverage=rng.gauss(.8, .15)) for i in range(b, min(n, b + 50_000))])
    started = time.perf_counter()
    result = drift.check(settings, end=t0 + span, registry=registry, notifier=Quiet())
    row = result["signals"][0]
    print({"rows": n, "baseline_read": row["baseline_requests"], "window_read": row["requests"],
           "check_s": round(time.perf_counter() - started, 1),
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024})


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
