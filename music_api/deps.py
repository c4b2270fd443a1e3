"""Dependencies: settings, database pool, object store (authentication lives in auth.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from psycopg import Connection
from psycopg_pool import ConnectionPool

from music_core.settings import Settings
from music_core.storage import ObjectStore


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_pool(request: Request) -> ConnectionPool:
    return request.app.state.pool


def get_conn(pool: Annotated[ConnectionPool, Depends(get_pool)]) -> Iterator[Connection]:
    with pool.connection() as conn:
        yield conn


def get_store(request: Request) -> ObjectStore:
    return request.app.state.store


Conn = Annotated[Connection, Depends(get_conn)]
Store = Annotated[ObjectStore, Depends(get_store)]
