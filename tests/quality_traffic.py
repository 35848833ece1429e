"""A scripted, seeded mix of live traffic written straight into the registry: answered, refused and voted questions."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from ragops.registry import Registry
from ragops.registry.models import Feedback, RequestEvent

STEADY = {"refused": 0.10, "evidence": 1.9, "similarity": 0.55, "voted": 0.3, "down": 0.15, "reported": 0.3,
          "followed": 0.6}


def write_traffic(registry: Registry, start: datetime, hours: float, *, per_hour: int = 40, users: int = 40,
                  seed: int = 0, variant: str = "stable", release_id: int | None = None, prefix: str = "",
                  synthetic: bool = False, user_prefix: str = "user", **mix) -> int:
    """`per_hour` questions an hour from `users` users, spread evenly over [start, start + hours); returns the count."""
    mix = STEADY | mix
    rng = np.random.default_rng(seed)
    n = int(per_hour * hours)
    step = timedelta(hours=hours) / max(n, 1)
    events, votes = [], []
    for i in range(n):
        rid = f"{prefix}{seed}-{variant}-{i}"
        refused = rng.random() < mix["refused"]
        similarity = float(rng.normal(mix["similarity"], 0.05))
        coverage = float(rng.normal(mix["evidence"] - 2.0 * mix["similarity"], 0.15))
        events.append(RequestEvent(ts=start + i * step, request_id=rid, endpoint="/v1/ask",
                                   user_hash=f"{user_prefix}{rng.integers(users)}", variant=variant, release_id=release_id,
                                   latency_ms=20.0, status=200, fallback="no_results" if refused else None,
                                   synthetic=synthetic, verified=True, question=f"question {i}",
                                   similarity=similarity, coverage=coverage))
        if rng.random() < mix["voted"]:
            followed = bool(rng.random() < mix["followed"]) if rng.random() < mix["reported"] else None
            votes.append(Feedback(ts=start + i * step, request_id=rid, user_hash=events[-1].user_hash,
                                  rating="down" if rng.random() < mix["down"] else "up", cited_followed=followed))
    with registry.session() as s:
        s.add_all(events + votes)
    return n
