"""Storage statistics and library analytics (read-only; cleanup runs in Dagster)."""

from __future__ import annotations

import shutil
from typing import Any

from fastapi import APIRouter, Depends, Request

from music_api.auth import require_reader
from music_api.deps import Conn, Store
from music_core import vector_index
from music_core.embed.embedder import describe_model

router = APIRouter(prefix="/storage", tags=["storage"], dependencies=[Depends(require_reader)])
PREFIXES = ("inbox/", "originals/", "converted/", "indexes/")

_GROUPS = {
    "by_genre": "coalesce(genre, 'Unknown')",
    "by_type": "coalesce(lower(substring(original_filename from '\\.([^./]+)$')), 'none')",
    "by_month": "to_char(date_trunc('month', uploaded_at), 'YYYY-MM')",
}


@router.get("/stats", summary="Bucket, database, index and disk usage")
def stats(request: Request, conn: Conn, store: Store) -> dict[str, Any]:
    bucket = {}
    for prefix in PREFIXES:
        count = size = 0
        for obj in store.list(prefix):
            count, size = count + 1, size + obj.size
        bucket[prefix.rstrip("/")] = {"objects": count, "bytes": size}
    db_bytes = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    tables = dict(
        conn.execute(
            "SELECT relname, pg_total_relation_size(relid) FROM pg_catalog.pg_statio_user_tables ORDER BY 2 DESC"
        ).fetchall()
    )
    manifest = vector_index.load_manifest(store, describe_model(request.app.state.settings.embedding_model))
    data_dir = request.app.state.settings.data_path
    disk = shutil.disk_usage(data_dir) if data_dir.exists() else None
    return {
        "bucket": bucket,
        "database": {"bytes": db_bytes, "tables": tables},
        "vector_index": None
        if manifest is None
        else {"version": manifest.version, "vectors": manifest.count},
        "disk": None if disk is None else {"path": str(data_dir), "total": disk.total, "free": disk.free},
    }


@router.get("/analytics", summary="Library composition: genres, types, months, largest, duplicates")
def analytics(conn: Conn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, expression in _GROUPS.items():
        rows = conn.execute(
            f"SELECT {expression} AS k, count(*), sum(file_size), coalesce(sum(duration), 0) "  # noqa: S608 - fixed expressions
            "FROM music_files GROUP BY k ORDER BY 2 DESC, 1"
        ).fetchall()
        out[name] = [{"key": r[0], "tracks": r[1], "bytes": int(r[2]), "seconds": float(r[3])} for r in rows]
    out["largest"] = [
        {"track_id": r[0], "filename": r[1], "bytes": r[2]}
        for r in conn.execute(
            "SELECT id, original_filename, file_size FROM music_files ORDER BY file_size DESC, seq LIMIT 10"
        ).fetchall()
    ]
    out["duplicates"] = [
        {"track_id": r[0], "filename": r[1], "names": r[2]}
        for r in conn.execute(
            "SELECT f.id, f.original_filename, array_agg(a.original_name ORDER BY a.id) FROM music_files f "
            "JOIN file_aliases a ON a.file_id = f.id GROUP BY f.id HAVING count(*) > 1 ORDER BY f.seq LIMIT 100"
        ).fetchall()
    ]
    out["failed_stages"] = dict(
        conn.execute(
            "SELECT stage, count(*) FROM track_stages WHERE status = 'failed' GROUP BY stage"
        ).fetchall()
    )
    return out
