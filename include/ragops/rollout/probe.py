"""Probe traffic: test-set questions sent to the serving app, so a quiet service still gathers the evidence a gate
needs instead of holding forever.

Probes are sent with the platform's own probe credential, the API key named RAGOPS_PROBE_KEY: the serving app marks
a request synthetic for that key alone, never for anything the request says about itself. Like any key, it fronts
users of its own, and probes go to both variants in equal numbers: the gate analyses them as a stratum of their own,
so test-set questions are compared with test-set questions and never shift the comparison of real users. Each
question has one probe user per side, the same on every run: the gate's user clusters are then questions, and twelve
questions asked a thousand times are twelve clusters, not a thousand users. Probes never count toward the gate's
minimum of users or requests, so they cannot promote a candidate alone.
"""

from __future__ import annotations

import hashlib

import httpx

from ragops.evaluation.testset import load_testset
from ragops.releases import bucket, routing_key


def probe_user(question: str, percent: float, canary: bool = True, key: str = "ragops-probe") -> str:
    """The probe user of `question` in the canary share (or on stable, as far from the canary share as can be), as
    the user id that API key `key` sends."""
    digest = hashlib.sha256(question.encode()).hexdigest()[:12]
    # a stable probe user stays on stable up to a 90% share, so one question does not change sides as stages grow
    low, high = (0, percent * 100) if canary else (max(percent * 100, 9000), 10_000)
    for i in range(1_000_000):
        user = f"probe-{digest}-{i}"
        if low <= bucket(routing_key(f"key:{key}", user)) < high:
            return user
    raise ValueError(f"no probe user in buckets [{low:g}, {high:g}) for a {percent:g}% canary")


def canary_users(percent: float, count: int, prefix: str = "probe", key: str | None = None) -> list[str]:
    """Ordinary user ids that land in the canary share, as API key `key` sends them (tests and simulations of real
    users); without a key, ids whose own hash does (what an attacker would pick)."""
    users, i = [], 0
    while len(users) < count and i < count * 10_000:
        user = f"{prefix}-{i}"
        if bucket(routing_key(f"key:{key}", user) if key else user) < percent * 100:
            users.append(user)
        i += 1
    return users


def send_probes(base_url: str, percent: float, count: int, api_key: str, testset: str | None = None, client=None,
                key: str = "ragops-probe") -> dict:
    """`count` probes to the canary and as many to stable, the same questions to each, one user per question and side,
    sent with `api_key`, the secret of the probe key named `key`."""
    questions = [item.question for item in load_testset(testset).items]
    statuses: dict[int, int] = {}
    headers = {"X-API-Key": api_key}
    pairs = [(probe_user(q, percent, True, key), probe_user(q, percent, False, key)) for q in questions]
    own = client is None
    client = client or httpx.Client(base_url=base_url, timeout=30)
    try:
        for i in range(count):
            question = questions[i % len(questions)]
            for user in pairs[i % len(questions)]:
                reply = client.post("/v1/ask", json={"question": question, "user_id": user},
                                    headers=headers)
                statuses[reply.status_code] = statuses.get(reply.status_code, 0) + 1
    finally:
        if own:
            client.close()
    return {"sent": sum(statuses.values()), "statuses": statuses}
