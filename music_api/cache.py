"""Redis cache for hot reads (track detail, search). Keys carry the pipeline's write generation, so
new results show up as soon as the pipeline writes (within the rate limiter's 0.1 s sync period, which
reads the generation for every request); entries also expire. Without Redis: no cache."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable

import redis
from fastapi import Request, Response
from pydantic import BaseModel

from music_core.cache_generation import GENERATION_KEY

log = logging.getLogger(__name__)
TTL_SECONDS = 300
BREAKER_SECONDS = 5.0


class ResponseCache:
    def __init__(self, url: str) -> None:
        self._redis = redis.Redis.from_url(url, socket_timeout=0.2, socket_connect_timeout=0.2)
        self._open_until = 0.0

    def _key(self, request: Request, generation: bytes | None) -> str:
        query = "&".join(sorted(f"{k}={v}" for k, v in request.query_params.multi_items()))
        digest = hashlib.sha256(f"{request.url.path}?{query}".encode()).hexdigest()[:32]
        return f"resp:{(generation or b'0').decode()}:{digest}"

    def json(self, request: Request, compute: Callable[[], BaseModel]) -> Response:
        key = None
        if time.monotonic() >= self._open_until:
            try:
                generation = getattr(request.state, "generation", None)  # read with the rate limit
                key = self._key(
                    request, self._redis.get(GENERATION_KEY) if generation is None else generation
                )
                hit = self._redis.get(key)
                if hit is not None:
                    return Response(hit, media_type="application/json", headers={"X-Cache": "HIT"})
            except redis.RedisError:
                self._open_until, key = time.monotonic() + BREAKER_SECONDS, None
        body = compute().model_dump_json().encode()
        if key is not None:
            try:
                self._redis.set(key, body, ex=TTL_SECONDS)
            except redis.RedisError:
                self._open_until = time.monotonic() + BREAKER_SECONDS
        return Response(body, media_type="application/json", headers={"X-Cache": "MISS"})

    def close(self) -> None:
        self._redis.close()
