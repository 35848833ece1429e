"""Probe traffic: test-set questions sent to the serving app as users who land in the canary, so a quiet service
still gathers the evidence a gate needs instead of holding forever."""

from __future__ import annotations

import httpx

from ragops.evaluation.testset import load_testset
from ragops.releases import bucket


def canary_users(percent: float, count: int, prefix: str = "probe") -> list[str]:
    """User ids whose stable hash puts them in the canary share."""
    users, i = [], 0
    while len(users) < count and i < count * 10_000:
        user = f"{prefix}-{i}"
        if bucket(user) < percent * 100:
            users.append(user)
        i += 1
    return users


def send_probes(base_url: str, percent: float, count: int, testset: str | None = None, client=None,
                api_key: str | None = None) -> dict:
    questions = [item.question for item in load_testset(testset).items]
    statuses: dict[int, int] = {}
    headers = {"X-API-Key": api_key} if api_key else {}
    own = client is None
    client = client or httpx.Client(base_url=base_url, timeout=30)
    try:
        for i, user in enumerate(canary_users(percent, count)):
            reply = client.post("/v1/ask", json={"question": questions[i % len(questions)], "user_id": user},
                                headers=headers)
            statuses[reply.status_code] = statuses.get(reply.status_code, 0) + 1
    finally:
        if own:
            client.close()
    return {"sent": sum(statuses.values()), "statuses": statuses}
