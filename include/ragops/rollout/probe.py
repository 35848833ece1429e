"""Probe traffic: test-set questions sent to the serving app, so a quiet service still gathers the evidence a gate
needs instead of holding forever.

Probes go to both variants in equal numbers, as fresh users each time (so no probe user grows heavy), with user ids
that mark their request events as synthetic: the gate analyses them as a stratum of their own, so test-set questions
are compared with test-set questions and never shift the comparison of real users.
"""

from __future__ import annotations

import os

import httpx

from ragops.evaluation.testset import load_testset
from ragops.monitoring.events import PROBE_PREFIX
from ragops.releases import bucket


def probe_users(percent: float, count: int, canary: bool = True, run: str | None = None) -> list[str]:
    """Fresh probe user ids whose stable hash puts them in the canary share (or outside it)."""
    run = run or os.urandom(4).hex()
    users, i = [], 0
    while len(users) < count and i < count * 10_000:
        user = f"{PROBE_PREFIX}{run}-{i}"
        if (bucket(user) < percent * 100) == canary:
            users.append(user)
        i += 1
    return users


def canary_users(percent: float, count: int, prefix: str = "probe") -> list[str]:
    """Ordinary user ids that land in the canary share (tests and simulations of real users)."""
    users, i = [], 0
    while len(users) < count and i < count * 10_000:
        user = f"{prefix}-{i}"
        if bucket(user) < percent * 100:
            users.append(user)
        i += 1
    return users


def send_probes(base_url: str, percent: float, count: int, testset: str | None = None, client=None,
                api_key: str | None = None) -> dict:
    """`count` probes to the canary and as many to stable, the same questions to each."""
    questions = [item.question for item in load_testset(testset).items]
    statuses: dict[int, int] = {}
    headers = {"X-API-Key": api_key} if api_key else {}
    run = os.urandom(4).hex()
    pairs = zip(probe_users(percent, count, True, run), probe_users(percent, count, False, run))
    own = client is None
    client = client or httpx.Client(base_url=base_url, timeout=30)
    try:
        for i, users in enumerate(pairs):
            for user in users:
                reply = client.post("/v1/ask", json={"question": questions[i % len(questions)], "user_id": user},
                                    headers=headers)
                statuses[reply.status_code] = statuses.get(reply.status_code, 0) + 1
    finally:
        if own:
            client.close()
    return {"sent": sum(statuses.values()), "statuses": statuses}
