"""Fixed-window rate limits in Redis, shared by every API worker. Per client IP (every request,
failed logins included) and per authenticated principal. If Redis is unreachable the API keeps
answering without limits, and stops asking Redis for a few seconds (no added latency per request).

Until a client has used half its budget in the window, each worker counts the client's requests
itself and adds them to the shared Redis counter at most every ``sync_seconds`` (0.1 s), judging in
between by the shared count of the last sync plus its own requests since; past half its budget, every
request is added at once, until Redis says the budget is spent (the client is then refused without a
round trip per request). A worker's own requests are never dropped: those a failed round trip did not
add are added at the next one. A burst spread over W workers can
pass the limit by at most (W - 1) x half the limit (what the others admitted before their first sync
past half). Per request that saves
one or two Redis round trips: a fifth of the API's CPU per seek of an audio stream (``make
bench-stream``). The same round trip reads the pipeline's write generation for the caches
(generation_cache.py), which is then at most ``sync_seconds`` old."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
import redis.asyncio as aredis

log = logging.getLogger(__name__)
WINDOW = 60
BREAKER_SECONDS = 5.0


@dataclass
class _Count:
    window: int
    shared: int = 0  # every worker's requests in this window, as of the last sync
    in_flight: int = 0  # this worker's requests being added right now
    pending: int = 0  # this worker's requests since then
    synced: float = -math.inf

    def total(self) -> int:
        return self.shared + self.in_flight + self.pending


class RateLimiter:
    def __init__(
        self,
        url: str,
        per_minute: int,
        *,
        sync_seconds: float = 0.1,
        remembered: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.per_minute = per_minute
        self._redis = aredis.Redis.from_url(url, socket_timeout=0.3, socket_connect_timeout=0.3)
        self._sync_seconds, self._remembered = sync_seconds, remembered
        self._clock, self._wall_clock = clock, wall_clock
        self._counts: dict[tuple[str, str], _Count] = {}
        self._window = 0
        self._read_at: dict[str, float] = {}
        self._values: dict[str, bytes] = {}
        self._read_seq = 0
        self._value_seq: dict[str, int] = {}
        self._open_until = -math.inf

    def _trip(self) -> None:
        self._open_until = self._clock() + BREAKER_SECONDS
        self._read_at.clear()
        self._values.clear()
        self._value_seq.clear()
        log.warning("rate limiting paused: Redis is unreachable")

    def _count(self, scope: str, ident: str, window: int) -> _Count:
        if window != self._window:  # a new window: the clients of the last one are forgotten at once
            self._counts, self._window = {}, window
        count = self._counts.get((scope, ident))
        if count is None:
            if len(self._counts) >= self._remembered:
                self._forget_one()
            count = self._counts[(scope, ident)] = _Count(window)
        return count

    def _forget_one(self) -> None:
        """Drop the oldest client whose every request is in Redis (its count is read again at its next
        request); only if the oldest few all have requests not yet added, the oldest of them."""
        oldest = None
        for n, (client, count) in enumerate(self._counts.items()):
            oldest = oldest or client
            if not count.pending and not count.in_flight:
                del self._counts[client]
                return
            if n >= 16:
                break
        if oldest is not None:
            del self._counts[oldest]

    async def ahit(self, scope: str, ident: str) -> int | None:
        """Count one request; the Retry-After seconds when over the limit, else None."""
        return (await self.ahit_reading(scope, ident, None))[0]

    async def ahit_reading(self, scope: str, ident: str, read: str | None) -> tuple[int | None, bytes | None]:
        """``ahit``, and the value of the key ``read`` (the pipeline's write generation, for the caches)
        as of at most ``sync_seconds`` ago: b"" when the key is absent, None when Redis is unreachable."""
        now = self._clock()
        if now < self._open_until:
            return None, None
        wall = self._wall_clock()
        window = math.floor(wall / WINDOW)
        count = self._count(scope, ident, window)
        count.pending += 1
        read_due = read is not None and now - self._read_at.get(read, -math.inf) >= self._sync_seconds
        # Past half its budget every request is synced, until Redis says the budget is spent: from then on
        # the client is refused for the rest of the window without a round trip per request.
        near_limit = self.per_minute // 2 < count.total() and count.shared <= self.per_minute
        if (near_limit or now - count.synced >= self._sync_seconds or read_due) and not await self._sync(
            scope, ident, count, read if read_due else None, now
        ):
            return None, None
        retry = max(1, math.ceil((window + 1) * WINDOW - wall)) if count.total() > self.per_minute else None
        return retry, self._values.get(read) if read is not None else None

    async def _sync(self, scope: str, ident: str, count: _Count, read: str | None, now: float) -> bool:
        """Add this worker's pending requests to the shared counter and take its new total (and read
        ``read``) in one round trip. False when Redis is unreachable. The times are set before the
        round trip, so the requests that arrive meanwhile do not start syncs of their own."""
        key = f"rl:{scope}:{ident}:{count.window}"
        sent, count.pending, count.synced = count.pending, 0, now
        count.in_flight += sent
        if read is not None:
            self._read_at[read] = now
            self._read_seq += 1
        seq = self._read_seq
        added = False
        try:
            pipe = self._redis.pipeline()
            pipe.incrby(key, sent).expire(key, WINDOW + 1)
            if read is not None:
                pipe.get(read)
            results = await pipe.execute()
            added = True
        except redis.RedisError:
            self._trip()
            return False
        finally:  # also when the request is cancelled meanwhile
            count.in_flight -= sent
            if not added:
                count.pending += sent  # not in Redis: added at the next sync
        count.shared = max(count.shared, int(results[0]) - count.in_flight)
        if read is not None and seq >= self._value_seq.get(read, -1):  # a slower, older read loses
            self._values[read], self._value_seq[read] = results[2] or b"", seq
        return True

    async def aclose(self) -> None:
        await self._redis.aclose()
