"""Many more concurrent requests than database connections and worker threads: every one is
answered (requests queue for a connection on the event loop instead of blocking threads)."""

from __future__ import annotations

import asyncio

import httpx

from music_api.main import create_app
from music_core.embedded import ServiceEndpoints
from music_core.storage import ObjectStore
from tests.test_api import AUTH, api_settings, flush_cache
from tests.test_web import LiveServer

CONCURRENT = 120  # > the pool's 10 connections and anyio's 40 worker threads


async def _burst(url: str) -> list[int]:
    limits = httpx.Limits(max_connections=CONCURRENT)
    async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=60, limits=limits) as client:
        paths = [
            f"/tracks?limit=5&offset={i}" if i % 2 else f"/storage/analytics?i={i}" for i in range(CONCURRENT)
        ]
        responses = await asyncio.gather(*(client.get(p) for p in paths))
    return [r.status_code for r in responses]


def test_a_burst_beyond_pool_and_threads_is_answered(
    services: ServiceEndpoints, store: ObjectStore, db_url: str
) -> None:
    flush_cache(services)
    app = create_app(api_settings(services, store.bucket, rate_limit_per_minute=100_000), warm_up=False)
    with LiveServer(app) as server:
        statuses = asyncio.run(_burst(server.url))
    assert statuses == [200] * CONCURRENT
