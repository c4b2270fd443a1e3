"""One counter in Redis that the pipeline bumps after writing; API cache keys include it, so every
cached response from before a write is simply never read again (no key scans, no races)."""

from __future__ import annotations

import redis

GENERATION_KEY = "music:generation"


def bump_generation(redis_url: str | None) -> None:
    if not redis_url:
        return
    try:
        client = redis.Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
        client.incr(GENERATION_KEY)
        client.close()
    except redis.RedisError:
        pass  # the cache expires on its own (short TTL); the pipeline never waits for Redis
