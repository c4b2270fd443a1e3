"""The rate limiter's per-worker counting with syncs to the shared Redis counter (real Redis)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis

from music_api.ratelimit import RateLimiter
from music_core.embedded import ServiceEndpoints

WALL = 1_000_000 * 60 + 10.0  # ten seconds into a window: 50 s are left


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _limiter(url: str, clock: Clock, per_minute: int = 10) -> RateLimiter:
    return RateLimiter(url, per_minute, sync_seconds=0.1, clock=clock, wall_clock=lambda: WALL)


async def _hits(limiter: RateLimiter, ident: str, n: int) -> list[int | None]:
    return [await limiter.ahit("ip", ident) for _ in range(n)]


def _shared(services: ServiceEndpoints, ident: str) -> int:
    return int(redis.Redis.from_url(services.redis_url).get(f"rl:ip:{ident}:{int(WALL // 60)}") or 0)


def test_below_half_the_budget_workers_count_locally_and_share_at_their_next_sync(
    services: ServiceEndpoints,
) -> None:
    clock, ident = Clock(), uuid.uuid4().hex
    first, second = (_limiter(services.redis_url, clock, per_minute=100) for _ in range(2))

    async def go() -> list[int]:
        shared = []
        assert await _hits(first, ident, 6) == [None] * 6
        shared.append(_shared(services, ident))  # only the first request went to Redis
        clock.now = 0.2
        assert await _hits(first, ident, 1) == [None]  # a sync period later: all 7 added
        shared.append(_shared(services, ident))
        assert await _hits(second, ident, 3) == [None] * 3  # the other worker's first request syncs
        shared.append(_shared(services, ident))
        await first.aclose()
        await second.aclose()
        return shared

    assert asyncio.run(go()) == [1, 7, 8]


def test_past_half_the_budget_every_request_is_shared_at_once(services: ServiceEndpoints) -> None:
    clock, ident = Clock(), uuid.uuid4().hex  # the clock stands still: no sync is due by time
    first, second = _limiter(services.redis_url, clock), _limiter(services.redis_url, clock)

    async def go() -> None:
        assert await _hits(first, ident, 10) == [None] * 10  # 2-5 counted locally, 6-10 each synced
        assert _shared(services, ident) == 10
        assert await _hits(second, ident, 1) == [50]  # one worker used the budget: the other knows at once
        assert await _hits(first, ident, 1) == [50]
        await first.aclose()
        await second.aclose()

    asyncio.run(go())


@pytest.mark.parametrize("order", ["interleaved", "one after the other"])
def test_a_burst_over_two_workers_passes_the_limit_by_less_than_half_of_it(
    services: ServiceEndpoints, order: str
) -> None:
    clock, ident = Clock(), uuid.uuid4().hex  # the clock stands still: only the budget triggers syncs
    workers = [_limiter(services.redis_url, clock) for _ in range(2)]
    plan = [n % 2 for n in range(40)] if order == "interleaved" else [0] * 4 + [1] * 36

    async def go() -> int:
        admitted = 0
        for worker in plan:
            admitted += await workers[worker].ahit("ip", ident) is None
        for limiter in workers:
            await limiter.aclose()
        return admitted

    assert 10 <= asyncio.run(go()) <= 10 + (2 - 1) * (10 // 2 - 1)  # the docstring's bound


def test_a_client_refused_by_redis_costs_no_more_round_trips(services: ServiceEndpoints) -> None:
    clock, ident = Clock(), uuid.uuid4().hex
    limiter = _limiter(services.redis_url, clock)

    async def go() -> list[int | None]:
        answers = await _hits(limiter, ident, 11)
        answers += await _hits(limiter, ident, 20)
        await limiter.aclose()
        return answers

    answers = asyncio.run(go())
    assert answers == [None] * 10 + [50] * 21
    assert _shared(services, ident) == 11  # the refusals after Redis said "spent" stayed local


def test_the_counts_forgotten_first_are_those_already_in_redis(services: ServiceEndpoints) -> None:
    clock = Clock()
    limiter = RateLimiter(services.redis_url, 100, remembered=2, clock=clock, wall_clock=lambda: WALL)
    names = [uuid.uuid4().hex for _ in range(3)]

    async def go() -> None:
        await limiter.ahit("ip", names[0])  # synced
        await limiter.ahit("ip", names[0])  # one request not yet in Redis
        await limiter.ahit("ip", names[1])  # synced: nothing pending
        await limiter.ahit("ip", names[2])  # a third client: one of the first two must go
        await limiter.aclose()

    asyncio.run(go())
    assert set(limiter._counts) == {("ip", names[0]), ("ip", names[2])}  # the oldest kept its request


def test_concurrent_requests_are_all_counted(services: ServiceEndpoints) -> None:
    clock, ident = Clock(), uuid.uuid4().hex
    limiter = _limiter(services.redis_url, clock, per_minute=1000)

    async def go() -> None:
        await asyncio.gather(*[limiter.ahit("ip", ident) for _ in range(50)])
        clock.now = 1.0
        await limiter.ahit("ip", ident)
        await limiter.aclose()

    asyncio.run(go())
    assert int(redis.Redis.from_url(services.redis_url).get(f"rl:ip:{ident}:{int(WALL // 60)}") or 0) == 51


def test_the_generation_is_read_with_the_count_and_at_most_one_sync_period_old(
    services: ServiceEndpoints,
) -> None:
    clock, ident, key = Clock(), uuid.uuid4().hex, f"gen-{uuid.uuid4().hex}"
    limiter = _limiter(services.redis_url, clock, per_minute=1000)
    client = redis.Redis.from_url(services.redis_url)

    async def read() -> bytes | None:
        return (await limiter.ahit_reading("ip", ident, key))[1]

    async def go() -> list[bytes | None]:
        seen = [await read()]  # absent
        client.set(key, b"7")
        seen.append(await read())  # still the value of this sync period
        clock.now = 0.1
        seen.append(await read())
        await limiter.aclose()
        return seen

    assert asyncio.run(go()) == [b"", b"", b"7"]


def test_without_redis_nothing_is_limited_and_redis_is_left_alone_for_a_while() -> None:
    clock = Clock()
    limiter = RateLimiter("redis://127.0.0.1:1/0", 1, clock=clock, wall_clock=lambda: WALL)

    async def go() -> list[tuple[int | None, bytes | None]]:
        answers = [await limiter.ahit_reading("ip", "x", "gen") for _ in range(5)]
        await limiter.aclose()
        return answers

    assert asyncio.run(go()) == [(None, None)] * 5
    assert limiter._open_until == 5.0  # tripped once, at the first request


def test_counts_of_past_windows_are_forgotten(services: ServiceEndpoints) -> None:
    clock, wall = Clock(), [WALL]
    limiter = RateLimiter(services.redis_url, 100, remembered=3, clock=clock, wall_clock=lambda: wall[0])

    async def go() -> int:
        for n in range(3):
            await limiter.ahit("ip", f"old-{n}")
        wall[0] += 60  # the next window
        await limiter.ahit("ip", "new")
        await limiter.aclose()
        return len(limiter._counts)

    assert asyncio.run(go()) == 1
