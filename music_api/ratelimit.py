"""Fixed-window rate limits in Redis, shared by every API worker. Per client IP (every request,
failed logins included) and per authenticated principal. If Redis is unreachable the API keeps
answering without limits, and stops asking Redis for a few seconds (no added latency per request)."""

from __future__ import annotations

import logging
import math
import time

import redis
import redis.asyncio as aredis

log = logging.getLogger(__name__)
WINDOW = 60
BREAKER_SECONDS = 5.0


class RateLimiter:
    def __init__(self, url: str, per_minute: int) -> None:
        self.per_minute = per_minute
        self._sync = redis.Redis.from_url(url, socket_timeout=0.3, socket_connect_timeout=0.3)
        self._async = aredis.Redis.from_url(url, socket_timeout=0.3, socket_connect_timeout=0.3)
        self._open_until = 0.0

    @staticmethod
    def _key(scope: str, ident: str, now: float) -> tuple[str, float]:
        window = math.floor(now / WINDOW)
        return f"rl:{scope}:{ident}:{window}", (window + 1) * WINDOW - now

    def _verdict(self, count: int, remaining: float) -> int | None:
        return max(1, math.ceil(remaining)) if count > self.per_minute else None

    def _trip(self) -> None:
        self._open_until = time.monotonic() + BREAKER_SECONDS
        log.warning("rate limiting paused: Redis is unreachable")

    def hit(self, scope: str, ident: str) -> int | None:
        """Count one request; the Retry-After seconds when over the limit, else None."""
        if time.monotonic() < self._open_until:
            return None
        key, remaining = self._key(scope, ident, time.time())
        try:
            pipe = self._sync.pipeline()
            count = pipe.incr(key).expire(key, WINDOW + 1).execute()[0]
        except redis.RedisError:
            self._trip()
            return None
        return self._verdict(int(count), remaining)

    async def ahit(self, scope: str, ident: str) -> int | None:
        if time.monotonic() < self._open_until:
            return None
        key, remaining = self._key(scope, ident, time.time())
        try:
            pipe = self._async.pipeline()
            count = (await pipe.incr(key).expire(key, WINDOW + 1).execute())[0]
        except redis.RedisError:
            self._trip()
            return None
        return self._verdict(int(count), remaining)

    async def aclose(self) -> None:
        self._sync.close()
        await self._async.aclose()
