"""Storage statistics and library analytics: shared by the API and the Dagster snapshot asset."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from psycopg import Connection

from music_core import index_manifest
from music_core.storage import ObjectStore

PREFIXES = ("inbox/", "originals/", "converted/", "sidecars/", "indexes/")

_GROUPS = {
    "by_genre": "coalesce(genre, 'Unknown')",
    "by_type": "coalesce(lower(substring(original_filename from '\\.([^./]+)$')), 'none')",
    "by_month": "to_char(date_trunc('month', uploaded_at), 'YYYY-MM')",
}


def storage_stats(conn: Connection, store: ObjectStore, model_id: str, data_dir: Path) -> dict[str, Any]:
    """Bucket usage per prefix, database and table sizes, vector index, free disk space."""
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
    manifest = index_manifest.load_manifest(store, model_id)
    disk = shutil.disk_usage(data_dir) if data_dir.exists() else None
    return {
        "bucket": bucket,
        "database": {"bytes": db_bytes, "tables": tables},
        "vector_index": None
        if manifest is None
        else {"version": manifest.version, "vectors": manifest.count},
        "disk": None if disk is None else {"path": str(data_dir), "total": disk.total, "free": disk.free},
    }


def library_analytics(conn: Connection) -> dict[str, Any]:
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
