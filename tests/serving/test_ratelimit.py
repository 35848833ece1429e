"""A burst over the limit gets polite 429s with Retry-After, never a 5xx; memory and Redis storage."""

import asyncio
import uuid

import pytest

from support import events
from serving.ratelimit import RateLimiter


@pytest.fixture(params=["memory", "redis"])
def limiter_factory(request):
    def make(per_caller, global_limit):
        if request.param == "memory":
            return RateLimiter(per_caller, global_limit)
        url = request.getfixturevalue("redis_url")
        return RateLimiter(per_caller, global_limit, url, prefix=f"ragops-test-{uuid.uuid4().hex[:8]}")

    return make


def test_burst_over_the_caller_limit(make_client, indexed, limiter_factory):
    client = make_client(limiter=limiter_factory("5/minute", "1000/minute"))
    replies = [client.post("/v1/search", json={"question": "guards", "user_id": "burst"}) for _ in range(12)]
    codes = [r.status_code for r in replies]
    assert codes[:5] == [200] * 5 and codes[5:] == [429] * 7
    refused = replies[-1]
    assert int(refused.headers["Retry-After"]) >= 1 and refused.headers["X-RateLimit-Remaining"] == "0"
    assert refused.json()["fallback"] == "rate_limited" and "wait" in refused.json()["error"]["message"]
    assert replies[0].headers["X-RateLimit-Limit"] == "5"
    other = client.post("/v1/search", json={"question": "guards", "user_id": "someone-else"})
    assert other.status_code == 200  # limits are per caller
    client.app.state.events.flush()
    assert len(events(indexed, status=429)) == 7
    assert 'ragops_rate_limited_total{scope="caller"} 7.0' in client.get("/metrics").text


def test_api_key_is_the_caller(make_client, limiter_factory):
    client = make_client(limiter=limiter_factory("2/minute", "1000/minute"))
    key = {"X-API-Key": "team-a"}
    codes = [client.post("/v1/search", json={"question": "guards", "user_id": f"u{i}"}, headers=key).status_code for i in range(3)]
    assert codes == [200, 200, 429]  # different user ids, one API key


def test_global_limit(make_client, limiter_factory):
    # a day, not a minute: on a busy machine five requests can straddle a minute boundary, and the sliding window
    # then (correctly) counts part of the previous minute's requests only
    client = make_client(limiter=limiter_factory("100/minute", "3/day"))
    codes = [client.post("/v1/search", json={"question": "guards", "user_id": f"u{i}"}).status_code for i in range(5)]
    assert codes == [200, 200, 200, 429, 429]


def test_store_outage_fails_open():
    limiter = RateLimiter("1/minute", "10/minute", "redis://127.0.0.1:1/0")
    assert asyncio.run(limiter.hit("anyone")) is None  # logged, request let through rather than refused
