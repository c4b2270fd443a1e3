"""Retention rule: which tracks are old enough to clean up, planned without touching anything."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from psycopg import Connection
from psycopg.rows import dict_row

from music_core.retention.options import RemovalOptions
from music_core.retention.removal import LATEST_UPLOAD_SQL, PlannedRemoval, bytes_for, object_keys_for

MAX_AGE_DAYS = 100_000  # ~270 years; larger ages (and infinity) overflow date arithmetic


@dataclass(frozen=True)
class RetentionRule:
    older_than_days: float
    options: RemovalOptions = field(default_factory=RemovalOptions)
    genre: str | None = None
    limit: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.older_than_days <= MAX_AGE_DAYS:  # NaN fails too
            raise ValueError(f"older_than_days must be between 0 and {MAX_AGE_DAYS}")
        if self.limit is not None and self.limit < 1:
            raise ValueError("limit must be >= 1")

    def describe(self) -> str:
        genre = f" of genre {self.genre!r}" if self.genre else ""
        kept = [k.removeprefix("delete_") for k, v in self.options.as_dict().items() if not v]
        return f"tracks{genre} last uploaded more than {self.older_than_days:g} days ago" + (
            f" (keeping {', '.join(kept)})" if kept else ""
        )


def plan_retention(
    conn: Connection, rule: RetentionRule, now: dt.datetime | None = None
) -> list[PlannedRemoval]:
    """Tracks the rule selects that still hold something the options remove (so a rerun plans nothing)."""
    now = now or dt.datetime.now(dt.UTC)
    cutoff = now - dt.timedelta(days=rule.older_than_days)
    o = rule.options
    # A track's age counts from its latest upload: content uploaded again is young again.
    sql = f"""
        SELECT * FROM (
            SELECT f.id, f.original_filename, f.genre, f.storage_path, f.file_size, f.converted_path,
                   f.converted_size, f.original_removed_at, f.seq, {LATEST_UPLOAD_SQL} AS last_upload
            FROM music_files f
            WHERE f.uploaded_at < %(cutoff)s AND (%(genre)s::text IS NULL OR f.genre = %(genre)s)
        ) f
        WHERE f.last_upload < %(cutoff)s
          AND (%(whole)s
               OR (%(original)s AND f.original_removed_at IS NULL)
               OR (%(converted)s AND f.converted_path IS NOT NULL)
               OR (%(vectors)s AND EXISTS (SELECT 1 FROM embeddings e WHERE e.file_id = f.id))
               OR (%(analysis)s AND (EXISTS (SELECT 1 FROM transcriptions t WHERE t.file_id = f.id)
                                     OR EXISTS (SELECT 1 FROM comparisons c WHERE c.file_id = f.id)
                                     OR EXISTS (SELECT 1 FROM lyrics l WHERE l.file_id = f.id AND NOT l.pinned))))
        ORDER BY f.last_upload, f.seq
        LIMIT %(limit)s
    """  # noqa: S608 - LATEST_UPLOAD_SQL is a constant; values are parameters
    params = {
        "cutoff": cutoff,
        "genre": rule.genre,
        "whole": o.delete_db_entries,
        "original": o.delete_original,
        "converted": o.delete_converted,
        "vectors": o.delete_vectors,
        "analysis": o.delete_analysis,
        "limit": rule.limit,
    }
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(sql, params).fetchall()
    return [
        PlannedRemoval(
            track_id=row["id"],
            filename=row["original_filename"],
            genre=row["genre"],
            last_upload=row["last_upload"],
            object_keys=tuple(object_keys_for(row, o)),
            bytes=bytes_for(row, o),
            reason=f"retention: {rule.describe()}",
            due_before=cutoff,
        )
        for row in rows
    ]
