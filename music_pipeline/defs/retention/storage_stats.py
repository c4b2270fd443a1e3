"""A storage_stats snapshot on a schedule: sizes per prefix, genre, type, month; database, index, disk."""

import dagster as dg
from psycopg.types.json import Jsonb

from music_core.db.connection import connect
from music_core.settings import Settings
from music_core.storage_stats import library_analytics, storage_stats
from music_pipeline.ml_resources import EmbedderResource
from music_pipeline.resources import DatabaseResource, ObjectStoreResource


@dg.asset(
    group_name="storage",
    kinds={"postgres"},
    description="Appends one row to storage_stats: bucket prefixes, database and index size, library analytics.",
)
def storage_stats_snapshot(
    db: DatabaseResource, storage: ObjectStoreResource, embedder: EmbedderResource
) -> dg.MaterializeResult:
    from music_core.embed.embedder import describe_model

    with connect(db.url) as conn:
        stats = storage_stats(conn, storage.store(), describe_model(embedder.model), Settings().data_path)
        stats["analytics"] = library_analytics(conn)
        row_id = conn.execute(
            "INSERT INTO storage_stats (stats_data) VALUES (%s) RETURNING id", (Jsonb(stats),)
        ).fetchone()[0]
    bucket_bytes = sum(p["bytes"] for p in stats["bucket"].values())
    return dg.MaterializeResult(
        metadata={
            "storage_stats_id": row_id,
            "bucket_bytes": bucket_bytes,
            "database_bytes": stats["database"]["bytes"],
            "tracks": sum(g["tracks"] for g in stats["analytics"]["by_genre"]),
            "free_disk_bytes": (stats["disk"] or {}).get("free", 0),
        }
    )


storage_stats_job = dg.define_asset_job(
    "storage_stats_job",
    selection=dg.AssetSelection.assets(storage_stats_snapshot),
    executor_def=dg.in_process_executor,
)
