"""Per-caller and global rate limits with the `limits` library; memory by default, Redis when configured.

A caller is a verified API key or, without one, the client address (serving/callers.py); each bucket may carry its
own limit. A request refused by its caller's limit does not count against the global one, so a flooding caller
spends only its own budget.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from limits import parse
from limits.storage import storage_from_string
from limits.aio.strategies import SlidingWindowCounterRateLimiter

log = logging.getLogger(__name__)


@dataclass
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_at: float
    scope: str  # caller | global
    bucket: str = ""  # the caller bucket counted (or, refused with scope caller, the one that refused)

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.reset_at - time.time()))

    def headers(self) -> dict[str, str]:
        headers = {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(max(0, self.remaining)),
                   "X-RateLimit-Reset": str(int(self.reset_at))}
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


class RateLimiter:
    def __init__(self, per_caller: str, global_limit: str, redis_url: str | None = None, prefix: str = "ragops"):
        self._parsed: dict[str, object] = {}
        if redis_url:  # redis-py (already a dependency) rather than limits' default coredis client
            self.storage = storage_from_string(f"async+{redis_url}", implementation="redispy", key_prefix=prefix)
        else:
            self.storage = storage_from_string("async+memory://")
        self.limiter = SlidingWindowCounterRateLimiter(self.storage)
        self.per_caller = parse(per_caller)
        self.global_limit = parse(global_limit)
        self.enabled = True

    def _limit(self, limit: str | None):
        if limit is None:
            return self.per_caller
        parsed = self._parsed.get(limit)
        if parsed is None:
            parsed = self._parsed.setdefault(limit, parse(limit))
        return parsed

    async def hit(self, caller: str, limit: str | None = None) -> Decision | None:
        """Count one request of `caller` (under `limit`, default the per-caller one); None when limits are disabled
        or the store is down (fail open, logged)."""
        return await self.hit_each([(caller, limit)])

    async def hit_each(self, buckets: list[tuple[str, str | None]]) -> Decision | None:
        """Count one request against each `(caller, limit)` bucket in turn, then the global limit. The first bucket
        that refuses decides: the buckets before it have counted the request, the global limit has not."""
        if not self.enabled:
            return None
        try:
            for caller, limit in buckets:
                own = self._limit(limit)
                if not await self.limiter.hit(own, "caller", caller):
                    return await self._decision(own, ("caller", caller), False, "caller")
            if not await self.limiter.hit(self.global_limit, "global"):
                return await self._decision(self.global_limit, ("global",), False, "global")
            caller, limit = buckets[0]
            return await self._decision(self._limit(limit), ("caller", caller), True, "caller")
        except (ConnectionError, OSError, TimeoutError) as exc:
            log.error("rate-limit store unavailable, letting the request through: %s", exc)
            return None
        except Exception as exc:  # redis-py raises its own ConnectionError, not a subclass of the builtin
            if type(exc).__module__.startswith("redis"):
                log.error("rate-limit store unavailable, letting the request through: %s", exc)
                return None
            raise

    async def _decision(self, item, ids: tuple, allowed: bool, scope: str) -> Decision:
        stats = await self.limiter.get_window_stats(item, *ids)
        return Decision(allowed, item.amount, stats.remaining, stats.reset_time, scope, ids[-1] if scope == "caller" else "")

    async def reset(self) -> None:
        await self.storage.reset()
