"""Two `ragops serve` replicas (real subprocesses on free ports) sharing the PostgreSQL registry and the Redis limiter.

Callers are told apart by their source address: each check sends from an address of its own in 127.0.0.0/8 (all of it
is loopback on Linux), so its limiter bucket is fresh on every run. The rate-limit burst carries no API key, so the
caller is the client address; the routing check sends a support desk's key with the ids of the users it fronts.
"""

from __future__ import annotations

import random
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import select

from production_support import Service, attach_logs, clean_env, wait_for
from support import free_port, throwaway_database

pytestmark = [pytest.mark.model, pytest.mark.timeout(900)]  # two serving replicas, each loading the model

LIMIT = 60  # per caller and hour: a burst of a few seconds never reaches the next window
CORPUS = {
    "replicas.md": "# Replicas\n\nServing replicas are stateless: they share the registry and the rate limiter.\n",
    "limits.md": "# Limits\n\nEach caller may send a bounded number of requests per hour across every replica.\n",
    "rollout.md": "# Rollout\n\nA canary release receives a fixed share of users, the same users on every replica.\n",
}


@dataclass
class Replicas:
    urls: list[str]
    registry_url: str
    settings: object
    desk_key: str  # the API key of "support-desk", which fronts end users by user_id

    def client(self, url: str, address: str) -> httpx.Client:
        return httpx.Client(base_url=url, timeout=60, transport=httpx.HTTPTransport(local_address=address))

    def events(self, request_ids: list[str]) -> dict[str, object]:
        from ragops.registry import Registry
        from ragops.registry.models import RequestEvent

        registry = Registry(self.registry_url)
        try:
            with registry.session() as s:
                rows = s.scalars(select(RequestEvent).where(RequestEvent.request_id.in_(request_ids))).all()
        finally:
            registry.dispose()
        return {row.request_id: row for row in rows}

    def stored(self, request_ids: list[str]) -> dict[str, object] | None:
        events = self.events(request_ids)
        return events if set(events) == set(request_ids) else None


def fresh_address() -> str:
    """A loopback source address no earlier run used within the limiter's window (in practice)."""
    return f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def replicas(request, pg_base, redis_base, tmp_path_factory, embedder):
    from ragops.config import Settings
    from ragops.ingest.refresh import Refresher

    root = tmp_path_factory.mktemp("replicas")
    for name, body in CORPUS.items():
        (root / "corpus").mkdir(exist_ok=True)
        (root / "corpus" / name).write_text(body, encoding="utf-8")
    logs = root / "logs"
    logs.mkdir()
    attach_logs(request.node, [logs])
    from ragops.audit.apikeys import issue

    desk_key, _ = issue(root / "keys.yaml", "support-desk", rate_limit="100000/hour")  # limits are checked keyless
    with throwaway_database(pg_base, "ragops_replicas") as registry_url:
        settings = Settings(home=root / "home", source=(root / "corpus").as_uri(), database_url=registry_url,
                            store="lance", rollout_stages=[50.0, 100.0])
        Refresher(settings, embedder=embedder).run()
        env = clean_env(RAGOPS_HOME=str(settings.home), RAGOPS_SOURCE=settings.source, RAGOPS_DATABASE_URL=registry_url,
                        RAGOPS_API_KEYS=str(root / "keys.yaml"),
                        RAGOPS_STORE="lance", RAGOPS_REDIS_URL=redis_base, RAGOPS_RATE_LIMIT=f"{LIMIT}/hour", RAGOPS_RATE_LIMIT_ADDRESS=f"{LIMIT}/hour",
                        RAGOPS_RATE_LIMIT_GLOBAL="100000/hour")
        services, urls = [], []
        try:
            for name in ("replica-1", "replica-2"):
                port = free_port()
                services.append(Service(name, [sys.executable, "-m", "ragops", "serve", "--host", "127.0.0.1",
                                               "--port", str(port)], env, logs))
                urls.append(f"http://127.0.0.1:{port}")
            for service, url in zip(services, urls):
                wait_for(f"{service.name} to answer /readyz", lambda: _ready(url), 300, interval=1.0,
                         alive=service.check_alive)
            yield Replicas(urls, registry_url, settings, desk_key)
        finally:
            for service in services:
                service.stop()


def test_one_user_gets_the_same_variant_from_both_replicas(replicas):
    from ragops.registry import Registry
    from ragops.registry.db import live_index_version
    from ragops.releases import bucket, create_release, routing_key
    from ragops.rollout.machine import Rollout
    from ragops.rollout.probe import canary_users

    prefix = f"replica-user-{uuid.uuid4().hex[:8]}"
    canary = canary_users(50.0, 3, prefix=prefix, key="support-desk")
    stable = [u for u in (f"{prefix}-s{i}" for i in range(200)) if bucket(routing_key("key:support-desk", u)) >= 5000][:3]
    address = fresh_address()
    clients = [replicas.client(url, address) for url in replicas.urls]

    def variants(user: str) -> list[tuple[str, str]]:
        replies = [c.post("/v1/search", json={"question": "how do replicas share limits?", "user_id": user},
                          headers={"X-API-Key": replicas.desk_key}) for c in clients]
        assert all(r.status_code == 200 for r in replies), [r.text for r in replies]
        return [(r.json()["variant"], r.json()["request_id"]) for r in replies]

    try:
        assert [v for v, _ in variants(canary[0])] == ["stable", "stable"]  # no rollout yet: everyone is stable
        registry = Registry(replicas.registry_url)
        with registry.session() as s:
            live = live_index_version(s).id
        create_release(registry, "candidate", live, {"k": 3}, created_by="test")
        registry.dispose()
        Rollout(replicas.settings).start("candidate", actor="test")  # the canary at the first stage: 50%

        # each replica re-reads the rollout within its refresh interval (5 s)
        wait_for("both replicas to route a canary user to the canary",
                 lambda: [v for v, _ in variants(canary[0])] == ["canary", "canary"], 60, interval=1.0)
        seen: dict[str, list[tuple[str, str]]] = {user: variants(user) for user in canary + stable}
    finally:
        for c in clients:
            c.close()
    for user, replies in seen.items():
        expected = "canary" if user in canary else "stable"
        assert [v for v, _ in replies] == [expected, expected], (user, replies)
    ids = [rid for replies in seen.values() for _, rid in replies]
    events = wait_for("the routing requests' events", lambda: replicas.stored(ids), 60)
    for replies in seen.values():
        for variant, rid in replies:
            assert events[rid].variant == variant, (user, rid)


def test_a_callers_limit_holds_across_both_replicas(replicas):
    address = fresh_address()
    clients = [replicas.client(url, address) for url in replicas.urls]

    def send(i: int) -> tuple[int, int, str]:
        reply = clients[i % 2].post("/v1/search", json={"question": f"how many requests may I send? ({i})"})
        return i % 2, reply.status_code, reply.headers["X-Request-ID"]

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(send, range(2 * LIMIT)))
    finally:
        for c in clients:
            c.close()
    admitted = [r for r in results if r[1] != 429]
    assert all(status == 200 for _, status, _ in admitted), {status for _, status, _ in admitted}
    assert abs(len(admitted) - LIMIT) <= LIMIT * 0.1, f"{len(admitted)} of {2 * LIMIT} admitted; the limit is {LIMIT}"
    for replica in (0, 1):  # both replicas count into the same bucket: each admits some and refuses some
        statuses = {status for r, status, _ in results if r == replica}
        assert statuses == {200, 429}, (replica, statuses)

    ids = [rid for _, _, rid in results]
    events = wait_for("an event for every request of the burst", lambda: replicas.stored(ids), 60)
    assert sorted(events[rid].status for rid in ids) == sorted(status for _, status, _ in results)
    assert sum(1 for rid in ids if events[rid].fallback == "rate_limited") == len(results) - len(admitted)


def test_every_request_event_from_both_replicas_is_stored(replicas):
    address = fresh_address()
    clients = [replicas.client(url, address) for url in replicas.urls]
    sent: dict[str, str] = {}
    try:
        for i in range(20):
            endpoint = "/v1/ask" if i % 4 < 2 else "/v1/search"
            body = {"question": f"are replicas stateless? ({i})", "user_id": f"u{i}"}
            reply = clients[i % 2].post(endpoint, json=body)
            assert reply.status_code == 200, reply.text
            sent[reply.headers["X-Request-ID"]] = endpoint
        bad = clients[0].post("/v1/ask", json={"question": ""})  # refused as invalid, and still recorded
        assert bad.status_code == 422
        sent[bad.headers["X-Request-ID"]] = "/v1/ask"
    finally:
        for c in clients:
            c.close()
    assert len(sent) == 21  # every request id is distinct
    events = wait_for("an event for every request", lambda: replicas.stored(list(sent)), 60)
    assert {rid: e.endpoint for rid, e in events.items()} == sent
    assert sorted(e.status for e in events.values()) == [200] * 20 + [422]
