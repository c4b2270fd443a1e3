"""Queries on tracks, aliases and stage states. Parameterised SQL only; callers own the connection."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg import Connection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

STAGE_STATUSES = ("pending", "running", "done", "failed", "skipped")


@dataclass(frozen=True)
class Registration:
    track_id: str
    created: bool  # False when the content was already known
    original_filename: str  # the first name this content was registered under


@dataclass(frozen=True)
class TrackState:
    track_id: str
    original_filename: str
    aliases: list[str]
    stages: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    transcript: str | None = None
    lyrics_source: str | None = None
    similarity: float | None = None


def register(
    conn: Connection,
    *,
    track_id: str,
    size: int,
    name: str,
    object_key: str,
    folder: str | None,
    storage_path: str,
    content_type: str | None,
) -> Registration:
    """Insert the track if new and record the alias; safe under concurrency and on rerun."""
    row = conn.execute(
        """
        INSERT INTO music_files (id, original_filename, storage_path, file_size, content_type, genre)
        VALUES (%s, %s, %s, %s, %s, %s)
        ON CONFLICT (id) DO NOTHING
        RETURNING original_filename
        """,
        (track_id, name, storage_path, size, content_type, None),
    ).fetchone()
    created = row is not None
    if not created:
        existing = conn.execute(
            "SELECT original_filename FROM music_files WHERE id = %s", (track_id,)
        ).fetchone()
        assert existing is not None
        row = existing
    # Content uploaded again after retention removed its original: the original is back.
    conn.execute(
        "UPDATE music_files SET original_removed_at = NULL WHERE id = %s AND original_removed_at IS NOT NULL",
        (track_id,),
    )
    conn.execute(
        """
        INSERT INTO file_aliases (file_id, original_name, object_key, folder)
        VALUES (%s, %s, %s, %s)
        ON CONFLICT (file_id, original_name)
        DO UPDATE SET upload_count = file_aliases.upload_count + 1, last_seen_at = now(),
                      object_key = EXCLUDED.object_key
        """,
        (track_id, name, object_key, folder),
    )
    return Registration(track_id, created, row[0])


def set_stage(
    conn: Connection,
    track_id: str,
    stage: str,
    status: str,
    *,
    error: str | None = None,
    warnings: Sequence[str] = (),
    run_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    if status not in STAGE_STATUSES:
        raise ValueError(f"unknown stage status {status!r}")
    conn.execute(
        """
        INSERT INTO track_stages (file_id, stage, status, error, warnings, attempts, run_id, details, updated_at)
        VALUES (%s, %s, %s, %s, %s, CASE WHEN %s = 'running' THEN 1 ELSE 0 END, %s, %s, now())
        ON CONFLICT (file_id, stage) DO UPDATE SET
            status = EXCLUDED.status, error = EXCLUDED.error, warnings = EXCLUDED.warnings,
            attempts = track_stages.attempts + EXCLUDED.attempts, run_id = EXCLUDED.run_id,
            details = EXCLUDED.details, updated_at = now()
        """,
        (track_id, stage, status, error, Jsonb(list(warnings)), status, run_id, Jsonb(details or {})),
    )


def stage_statuses(conn: Connection, track_ids: Iterable[str], stage: str) -> dict[str, str]:
    rows = conn.execute(
        "SELECT file_id, status FROM track_stages WHERE stage = %s AND file_id = ANY(%s)",
        (stage, list(track_ids)),
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def update_audio_facts(conn: Connection, track_id: str, facts: dict[str, Any]) -> None:
    conn.execute(
        """
        UPDATE music_files SET container = %(container)s, codec = %(codec)s, duration = %(duration)s,
            sample_rate = %(sample_rate)s, channels = %(channels)s, bit_rate = %(bit_rate)s,
            artist = %(artist)s, title = %(title)s, album = %(album)s, genre = %(genre)s, year = %(year)s,
            embedded_lyrics = %(lyrics)s, metadata = metadata || %(extra)s
        WHERE id = %(id)s
        """,
        {**facts, "id": track_id, "extra": Jsonb(facts.get("extra", {}))},
    )


def update_conversion(
    conn: Connection,
    track_id: str,
    *,
    path: str,
    size: int,
    duration: float,
    fingerprint: str | None,
    algorithm: str,
) -> None:
    conn.execute(
        "UPDATE music_files SET converted_path = %s, converted_size = %s, converted_duration = %s WHERE id = %s",
        (path, size, duration, track_id),
    )
    if fingerprint:
        conn.execute(
            """
            INSERT INTO fingerprints (file_id, algorithm, fingerprint) VALUES (%s, %s, %s)
            ON CONFLICT (file_id) DO UPDATE SET algorithm = EXCLUDED.algorithm,
                fingerprint = EXCLUDED.fingerprint, created_at = now()
            """,
            (track_id, algorithm, fingerprint),
        )


def exists(conn: Connection, track_id: str) -> bool:
    return conn.execute("SELECT 1 FROM music_files WHERE id = %s", (track_id,)).fetchone() is not None


def resolve_track(conn: Connection, prefix: str) -> str:
    """The one track id starting with ``prefix`` (at least 6 hex characters); LookupError otherwise."""
    prefix = prefix.strip().lower()
    if len(prefix) < 6 or any(ch not in "0123456789abcdef" for ch in prefix):
        raise LookupError("give a track id or a unique prefix of at least 6 hex characters")
    rows = conn.execute(
        "SELECT id FROM music_files WHERE id LIKE %s ORDER BY seq LIMIT 2", (prefix + "%",)
    ).fetchall()
    if len(rows) != 1:
        raise LookupError(f"{'no track' if not rows else 'more than one track'} matches {prefix!r}")
    return str(rows[0][0])


def get_track(conn: Connection, track_id: str) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT * FROM music_files WHERE id = %s", (track_id,)).fetchone()


def first_alias_folder(conn: Connection, track_id: str) -> str | None:
    row = conn.execute(
        "SELECT folder FROM file_aliases WHERE file_id = %s AND folder IS NOT NULL ORDER BY id LIMIT 1",
        (track_id,),
    ).fetchone()
    return row[0] if row else None


def unstarted_tracks(conn: Connection, after_seq: int, limit: int) -> list[tuple[str, int]]:
    """Registered tracks after ``after_seq`` that no stage has touched yet, in registration order."""
    return [
        (r[0], r[1])
        for r in conn.execute(
            """
            SELECT f.id, f.seq FROM music_files f
            WHERE f.seq > %(after)s AND NOT EXISTS (SELECT 1 FROM track_stages s WHERE s.file_id = f.id)
            ORDER BY f.seq LIMIT %(limit)s
            """,
            {"after": after_seq, "limit": limit},
        ).fetchall()
    ]


@dataclass(frozen=True)
class UnfinishedTrack:
    track_id: str
    seq: int
    first_unfinished: str  # the earliest of the stages without an outcome


def unfinished_tracks(
    conn: Connection, stages: Sequence[str], idle_seconds: float, limit: int
) -> list[UnfinishedTrack]:
    """Tracks, registered and untouched for ``idle_seconds``, with a stage that has no outcome (done,
    failed or skipped): never started, or left running or unstarted by a run that stopped."""
    rows = conn.execute(
        """
        SELECT id, seq, finished FROM (
            SELECT f.id, f.seq, max(s.updated_at) AS touched,
                   coalesce(array_agg(s.stage) FILTER (WHERE s.status IN ('done', 'failed', 'skipped')),
                            '{}') AS finished
            FROM music_files f LEFT JOIN track_stages s ON s.file_id = f.id
            WHERE f.uploaded_at < now() - make_interval(secs => %(idle)s)
            GROUP BY f.id, f.seq
        ) t
        WHERE NOT %(stages)s::text[] <@ finished
          AND coalesce(touched, '-infinity') < now() - make_interval(secs => %(idle)s)
        ORDER BY seq LIMIT %(limit)s
        """,
        {"stages": list(stages), "idle": idle_seconds, "limit": limit},
    ).fetchall()
    return [UnfinishedTrack(r[0], r[1], next(stage for stage in stages if stage not in r[2])) for r in rows]


def track_states(conn: Connection, track_ids: Sequence[str] | None = None) -> list[TrackState]:
    rows = conn.execute(
        """
        SELECT f.id, f.original_filename,
               COALESCE((SELECT array_agg(a.original_name ORDER BY a.id) FROM file_aliases a
                         WHERE a.file_id = f.id), '{}'),
               COALESCE((SELECT jsonb_object_agg(s.stage, s.status) FROM track_stages s
                         WHERE s.file_id = f.id), '{}'::jsonb),
               COALESCE((SELECT jsonb_object_agg(s.stage, s.error) FROM track_stages s
                         WHERE s.file_id = f.id AND s.error IS NOT NULL), '{}'::jsonb),
               (SELECT t.transcription_text FROM transcriptions t WHERE t.file_id = f.id
                ORDER BY t.created_at DESC LIMIT 1),
               (SELECT l.source FROM lyrics l WHERE l.file_id = f.id ORDER BY l.pinned DESC, l.fetched_at DESC
                LIMIT 1),
               (SELECT c.similarity FROM comparisons c WHERE c.file_id = f.id ORDER BY c.created_at DESC LIMIT 1)
        FROM music_files f
        WHERE %(all)s OR f.id = ANY(%(ids)s)
        ORDER BY f.seq
        """,
        {"all": track_ids is None, "ids": list(track_ids or [])},
    ).fetchall()
    return [TrackState(r[0], r[1], list(r[2]), dict(r[3]), dict(r[4]), *r[5:]) for r in rows]
