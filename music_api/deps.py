"""Dependencies: settings, database pool, object store (authentication lives in auth.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from psycopg import Connection
from psycopg_pool import ConnectionPool

from music_core.settings import Settings
from music_core.storage import ObjectStore


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_pool(request: Request) -> ConnectionPool:
    return request.app.state.pool


def _slots(request: Request, pool: ConnectionPool) -> asyncio.Semaphore:
    """One semaphore per pool (a new lifespan makes a new pool, maybe on a new event loop). Created on the
    event loop with no await between the check and the set, so two requests cannot both create one."""
    owner, slots = getattr(request.app.state, "db_slots", (None, None))
    if owner is not pool or slots is None:
        slots = asyncio.Semaphore(pool.max_size)
        request.app.state.db_slots = (pool, slots)
    return slots


async def get_conn(
    request: Request, pool: Annotated[ConnectionPool, Depends(get_pool)]
) -> AsyncIterator[Connection]:
    """A pooled connection, committed on success and rolled back on error.

    Requests queue for a connection on the event loop (a semaphore as large as the pool), not in a worker
    thread: with more waiting requests than threads, threads blocked in ``pool.getconn`` would starve the
    requests that hold connections of the threads they need to finish (every request then stalls until
    the pool times out). Measured with 100 concurrent clients by ``make bench-api``."""
    async with _slots(request, pool):
        manager = pool.connection()
        conn = await run_in_threadpool(manager.__enter__)  # not abandoned on cancel: we always get it back
        error: BaseException | None = None
        try:
            yield conn
        except BaseException as exc:
            error = exc
            raise
        finally:
            with anyio.CancelScope(shield=True):  # a cancelled request still returns its connection
                await run_in_threadpool(
                    manager.__exit__,
                    type(error) if error else None,
                    error,
                    error.__traceback__ if error else None,
                )


def _fetch_one(pool: ConnectionPool, query: str, params: tuple[object, ...]) -> tuple | None:
    with pool.connection() as conn:
        return conn.execute(query, params).fetchone()  # type: ignore[arg-type]


async def fetch_one(request: Request, query: str, params: tuple[object, ...]) -> tuple | None:
    """One row in a single worker-thread hop (``Conn`` costs three: taking, using and returning the
    connection), for the hot read-only lookups such as every range request of a stream."""
    pool = request.app.state.pool
    async with _slots(request, pool):
        return await run_in_threadpool(_fetch_one, pool, query, params)


async def get_store(request: Request) -> ObjectStore:
    return request.app.state.store


# "function" scope: the transaction commits and the connection goes back to the pool when the route
# returns, before the response is sent. With FastAPI's default ("request") a client could read before
# its own write had committed, and a streamed export held a connection for as long as it streamed.
Conn = Annotated[Connection, Depends(get_conn, scope="function")]
Store = Annotated[ObjectStore, Depends(get_store)]
