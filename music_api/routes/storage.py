"""Storage statistics, library analytics and cleanup preview (read-only; cleanup runs in Dagster)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from music_api.auth import require_admin, require_reader
from music_api.deps import Conn, Store
from music_core.embed.embedder import describe_model
from music_core.retention.options import RemovalOptions
from music_core.retention.rules import RetentionRule, plan_retention
from music_core.storage_stats import library_analytics, storage_stats

router = APIRouter(prefix="/storage", tags=["storage"], dependencies=[Depends(require_reader)])


@router.get("/stats", summary="Bucket, database, index, disk usage and this API's local audio copies")
def stats(request: Request, conn: Conn, store: Store) -> dict[str, Any]:
    settings = request.app.state.settings
    cache = request.app.state.audio_cache
    return storage_stats(conn, store, describe_model(settings.embedding_model), settings.data_path) | {
        "audio_copies": None if cache is None else cache.usage()
    }


@router.get("/analytics", summary="Library composition: genres, types, months, largest, duplicates")
def analytics(conn: Conn) -> dict[str, Any]:
    return library_analytics(conn)


@router.get(
    "/cleanup/preview",
    summary="What a retention rule would remove now, and the space it would free (read-only)",
    dependencies=[Depends(require_admin)],
)
def cleanup_preview(
    conn: Conn,
    older_than_days: Annotated[float, Query(ge=0, le=36500)],
    genre: Annotated[str | None, Query(max_length=200)] = None,
    keep_originals: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    options = RemovalOptions.keep_originals() if keep_originals else RemovalOptions.everything()
    rule = RetentionRule(older_than_days=older_than_days, options=options, genre=genre)
    plans = plan_retention(conn, rule)
    return {
        "rule": rule.describe(),
        "options": options.as_dict(),
        "tracks": len(plans),
        "bytes": sum(p.bytes for p in plans),
        "candidates": [
            {
                "track_id": p.track_id,
                "filename": p.filename,
                "genre": p.genre,
                "last_upload": p.last_upload.isoformat() if p.last_upload else None,
                "bytes": p.bytes,
            }
            for p in plans[:limit]
        ],
        "execute": "run the Dagster job retention_job (or `music-analyzer retention --execute`)",
    }
