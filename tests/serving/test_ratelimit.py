"""Rate limits: a verified API key or else the client address is the caller; a body's user_id never is (finding 5).

A burst over a limit gets polite 429s with Retry-After, never a 5xx; memory and Redis storage. Limits whose count
the tests assert are per hour or per day, never per minute: the window is a sliding one, so on a busy machine a
burst that straddles a minute boundary (correctly) counts only part of the previous minute's requests.
"""

import asyncio
import uuid

import pytest
from fastapi.testclient import TestClient

from support import Peer, events
from serving.ratelimit import RateLimiter


@pytest.fixture(params=["memory", "redis"])
def limiter_factory(request):
    def make(per_caller, global_limit):
        if request.param == "memory":
            return RateLimiter(per_caller, global_limit)
        url = request.getfixturevalue("redis_url")
        return RateLimiter(per_caller, global_limit, url, prefix=f"ragops-test-{uuid.uuid4().hex[:8]}")

    return make


class _At:
    def __init__(self, client, address):
        self.client, self.address = client, address

    def post(self, url, headers=None, **kw):
        return self.client.post(url, headers={"X-Test-Peer": self.address} | (headers or {}), **kw)

    def get(self, url, **kw):
        return self.client.get(url, headers={"X-Test-Peer": self.address}, **kw)


@pytest.fixture
def app_for(indexed, embedder):
    """An app with its own settings; `at(address)` is a client connecting from that address."""
    from ragops.answer.pipeline import AnswerService
    from serving.app import create_app

    clients = []

    def make(limiter=None, **overrides):
        cfg = indexed.model_copy(update=overrides)
        app = create_app(cfg, service=AnswerService(cfg, embedder=embedder), limiter=limiter)
        client = TestClient(Peer(app))
        client.__enter__()
        clients.append(client)
        return app, lambda address="203.0.113.7": _At(client, address)

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def _search(client, headers=None, **body):
    return client.post("/v1/search", json={"question": "guards"} | body, headers=headers or {})


def test_rotating_user_ids_does_not_escape_the_address_limit(app_for, indexed, limiter_factory):
    app, at = app_for(limiter_factory("1000/minute", "1000/minute"), rate_limit_address="5/hour")
    client = at("203.0.113.7")
    replies = [_search(client, user_id=f"rotating-{i}") for i in range(12)]
    codes = [r.status_code for r in replies]
    assert codes[:5] == [200] * 5 and codes[5:] == [429] * 7
    refused = replies[-1]
    assert int(refused.headers["Retry-After"]) >= 1 and refused.headers["X-RateLimit-Remaining"] == "0"
    assert refused.json()["fallback"] == "rate_limited" and "wait" in refused.json()["error"]["message"]
    assert replies[0].headers["X-RateLimit-Limit"] == "5"
    assert _search(at("198.51.100.9")).status_code == 200  # limits are per address
    app.state.events.flush()
    assert len(events(indexed, status=429)) == 7
    assert 'ragops_rate_limited_total{scope="caller"} 7.0' in client.get("/metrics").text


def test_an_issued_api_key_is_the_caller(app_for, indexed, tmp_path, limiter_factory):
    from ragops.audit.apikeys import ApiKeys, issue

    keys_file = tmp_path / "api-keys.yaml"
    secret, _ = issue(keys_file, "team-a", rate_limit="3/hour")
    assert secret not in keys_file.read_text() and ApiKeys.load(keys_file).verify(secret).name == "team-a"
    app, at = app_for(limiter_factory("1000/minute", "1000/minute"), api_keys=keys_file, rate_limit_address="1/hour")
    client = at()
    codes = [_search(client, {"X-API-Key": secret}, user_id=f"u{i}").status_code for i in range(4)]
    assert codes == [200, 200, 200, 429]  # one key, whatever the user ids; its own limit, not the address's
    assert _search(client, {"Authorization": f"Bearer {secret}"}).status_code == 429  # either header, same key
    assert _search(client).status_code == 200  # the address's own bucket is untouched by the key's requests


@pytest.mark.parametrize("headers", [{"X-API-Key": "made-up"}, {"Authorization": "Bearer rgk_forged"},
                                     {"Authorization": "Basic dXNlcjpwYXNz"}])
def test_an_invalid_key_gets_a_clear_401(app_for, indexed, tmp_path, headers):
    from ragops.audit.apikeys import issue

    issue(tmp_path / "keys.yaml", "team-a")
    app, at = app_for(api_keys=tmp_path / "keys.yaml")
    reply = _search(at(), headers)
    assert reply.status_code == 401 and reply.headers["WWW-Authenticate"] == "Bearer"
    assert reply.json()["error"]["code"] == "invalid_api_key" and reply.json()["request_id"]
    app.state.events.flush()
    assert [e.error for e in events(indexed, status=401)] == ["invalid_api_key"]


def test_revoked_key_is_refused(app_for, tmp_path):
    from ragops.audit.apikeys import issue, revoke

    secret, _ = issue(tmp_path / "keys.yaml", "gone")
    revoke(tmp_path / "keys.yaml", "gone")
    _, at = app_for(api_keys=tmp_path / "keys.yaml")
    assert _search(at(), {"X-API-Key": secret}).status_code == 401


def test_forwarded_for_is_believed_only_from_a_trusted_proxy(app_for, limiter_factory):
    _, at = app_for(limiter_factory("1000/minute", "1000/minute"), rate_limit_address="2/hour",
                    trusted_proxies=["10.0.0.0/8"])
    direct = at("203.0.113.7")  # not a proxy: its X-Forwarded-For is ignored, so rotating it does not help
    assert [_search(direct, {"X-Forwarded-For": f"192.0.2.{i}"}).status_code for i in range(3)] == [200, 200, 429]
    proxy = at("10.1.2.3")  # a trusted proxy: each forwarded client has its own bucket
    assert [_search(proxy, {"X-Forwarded-For": f"198.51.100.{i % 2}"}).status_code for i in range(4)] == [200] * 4
    assert _search(proxy, {"X-Forwarded-For": "198.51.100.0"}).status_code == 429
    # a client cannot smuggle an address through a trusted proxy: the proxy appends the real one, which counts
    spoofed = [_search(proxy, {"X-Forwarded-For": f"192.0.2.{i}, 198.51.100.1"}).status_code for i in range(2)]
    assert spoofed == [429, 429]


def test_one_ipv6_64_is_one_caller(app_for, indexed, limiter_factory):
    """A host is given a whole /64 (2^64 addresses): one address each would make the address limit, and the gate's
    per-address cap (RAGOPS_ROLLOUT_ANONYMOUS=address), worthless. An IPv4 address written IPv6-mapped is itself."""
    app, at = app_for(limiter_factory("1000/minute", "1000/minute"), rate_limit_address="3/hour")
    codes = [_search(at(f"2001:db8:1:2::{i:x}")).status_code for i in range(1, 6)]
    assert codes == [200, 200, 200, 429, 429]
    assert _search(at("2001:db8:1:2:ffff:ffff:ffff:fffe")).status_code == 429
    assert _search(at("2001:db8:1:3::1")).status_code == 200  # the next /64 is another caller
    assert [_search(at(a)).status_code for a in ("203.0.113.7", "::ffff:203.0.113.7", "::ffff:cb00:7107")] == [
        200, 200, 200]
    assert _search(at("203.0.113.7")).status_code == 429  # the three above were one IPv4 caller
    app.state.events.flush()
    assert len({e.user_hash for e in events(indexed)}) == 3  # the gate's user: the /64, the next /64, the IPv4


def test_a_flooding_address_cannot_starve_a_keyed_caller(app_for, tmp_path, limiter_factory):
    """The per-address limit sits well below the global one: the flood spends only its own budget."""
    from ragops.audit.apikeys import issue

    secret, _ = issue(tmp_path / "keys.yaml", "good-citizen")
    _, at = app_for(limiter_factory("1000/minute", "20/minute"), api_keys=tmp_path / "keys.yaml",
                    rate_limit_address="5/hour")
    flood, good = at("203.0.113.66"), at("198.51.100.20")
    outcomes = []
    for i in range(40):
        _search(flood, user_id=f"bot-{i}")
        if i % 4 == 0:
            outcomes.append(_search(good, {"X-API-Key": secret}).status_code)
    assert outcomes == [200] * 10
def test_global_limit(make_client, limiter_factory):
    # a day, not a minute: on a busy machine five requests can straddle a minute boundary, and the sliding window
    # then (correctly) counts part of the previous minute's requests only
    client = make_client(limiter=limiter_factory("100/minute", "3/day"))
    codes = [client.post("/v1/search", json={"question": "guards", "user_id": f"u{i}"}).status_code for i in range(5)]
    assert codes == [200, 200, 200, 429, 429]


def test_store_outage_fails_open():
    limiter = RateLimiter("1/minute", "10/minute", "redis://127.0.0.1:1/0")
    assert asyncio.run(limiter.hit("anyone")) is None  # logged, request let through rather than refused


def test_hit_each_counts_every_bucket_and_the_first_refusal_decides(limiter_factory):
    """MCP calls count against their token's and their address's buckets (serving/mcp_server.py)."""
    limiter = limiter_factory("5/hour", "100/hour")

    async def run():
        calls = [await limiter.hit_each([("mcp:a", "2/hour"), ("addr:x", "3/hour")]) for _ in range(3)]
        other = [await limiter.hit_each([("mcp:b", "2/hour"), ("addr:x", "3/hour")]) for _ in range(2)]
        return calls, other

    calls, other = asyncio.run(run())
    assert [d.allowed for d in calls] == [True, True, False] and calls[2].bucket == "mcp:a"
    assert calls[0].bucket == "mcp:a" and calls[0].scope == "caller"
    assert [d.allowed for d in other] == [True, False] and other[1].bucket == "addr:x"  # a's refused call spent none
