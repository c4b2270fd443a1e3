"""Response models (separate from table rows)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel


class HealthCheck(BaseModel):
    ok: bool
    detail: str | None = None


class Health(BaseModel):
    status: str  # ok | degraded | down
    checks: dict[str, HealthCheck]


class TrackSummary(BaseModel):
    id: str
    filename: str
    aliases: int
    size: int
    duration: float | None
    genre: str | None
    artist: str | None
    title: str | None
    uploaded_at: dt.datetime
    stages: dict[str, str]


class TrackPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[TrackSummary]
