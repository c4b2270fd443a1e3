"""Removing a track (or part of it) from everywhere it lives, crash-safely.

Order per track, under its exclusive advisory lock (stages and registration hold a shared one):
1. record a removal intent (what to remove, which objects);
2. delete the objects;
3. in one transaction: delete or update the rows, and drop the intent.
A crash between 1 and 3 leaves the intent; the next cleanup run finishes it first, so the end state
equals an uninterrupted run and no row is left pointing at an object that is gone.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from psycopg import Connection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from music_core.batching import SIDECAR_SUFFIXES
from music_core.db import tracks
from music_core.db.connection import connect
from music_core.db.locks import (
    release_exclusive_track_lock,
    try_exclusive_track_lock,
    wait_exclusive_track_lock,
)
from music_core.naming import converted_key, sidecar_key
from music_core.retention.options import RemovalOptions
from music_core.stage_names import COMPARISON, CONVERTED_AUDIO, EMBEDDING, LYRICS, TRANSCRIPTION
from music_core.storage import ObjectStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlannedRemoval:
    track_id: str
    filename: str
    genre: str | None
    last_upload: dt.datetime | None
    object_keys: tuple[str, ...]
    bytes: int
    reason: str
    # A retention rule's cutoff: the removal happens only if, once the track's lock is held, its
    # latest upload is still older (content uploaded again while the run went on is young again).
    due_before: dt.datetime | None = None


@dataclass
class RemovalResult:
    removed: list[str] = field(default_factory=list)  # tracks whose removal completed
    tracks_deleted: list[str] = field(default_factory=list)  # ... of which the whole track is gone
    deferred: list[str] = field(default_factory=list)  # busy (being processed): left for the next run
    renewed: list[str] = field(default_factory=list)  # uploaded again since planned: no longer due
    failed: dict[str, str] = field(default_factory=dict)
    bytes_freed: int = 0
    vectors_removed: bool = False

    def add(self, other: RemovalResult) -> None:
        self.removed += other.removed
        self.tracks_deleted += other.tracks_deleted
        self.deferred += other.deferred
        self.renewed += other.renewed
        self.failed.update(other.failed)
        self.bytes_freed += other.bytes_freed
        self.vectors_removed |= other.vectors_removed


def object_keys_for(track: dict, options: RemovalOptions) -> list[str]:
    """The objects these options remove for one track row (missing ones are harmless to delete)."""
    track_id = track["id"]
    keys: list[str] = []
    if options.delete_original and track.get("original_removed_at") is None:
        keys.append(track["storage_path"])
    if options.delete_original or options.delete_db_entries:
        keys += [sidecar_key(track_id, suffix) for suffix in SIDECAR_SUFFIXES]
    if options.delete_converted:
        keys.append(track.get("converted_path") or converted_key(track_id))
    return list(dict.fromkeys(keys))


def bytes_for(track: dict, options: RemovalOptions) -> int:
    freed = 0
    if options.delete_original and track.get("original_removed_at") is None:
        freed += track["file_size"] or 0
    if options.delete_converted and track.get("converted_path"):
        freed += track.get("converted_size") or 0
    return freed


def plan_track_removals(
    conn: Connection, track_ids: Sequence[str], options: RemovalOptions, reason: str
) -> list[PlannedRemoval]:
    """Plans for named tracks (duplicate merges, operator requests); unknown ids are ignored."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT * FROM music_files WHERE id = ANY(%s) ORDER BY seq", (list(track_ids),)
        ).fetchall()
    return [
        PlannedRemoval(row["id"], row["original_filename"], row["genre"], None,
                       tuple(object_keys_for(row, options)), bytes_for(row, options), reason)
        for row in rows
    ]  # fmt: skip


# When a track's content was last uploaded, under any of its names (``f`` is its music_files row).
LATEST_UPLOAD_SQL = (
    "GREATEST(f.uploaded_at, (SELECT max(a.last_seen_at) FROM file_aliases a WHERE a.file_id = f.id))"
)


def latest_upload(conn: Connection, track_id: str) -> dt.datetime | None:
    """When this content was last uploaded (None for an unknown track)."""
    row = conn.execute(
        f"SELECT {LATEST_UPLOAD_SQL} FROM music_files f WHERE f.id = %s",  # noqa: S608 - a constant
        (track_id,),
    ).fetchone()
    return row[0] if row else None


def _record_intent(conn: Connection, plan: PlannedRemoval, options: RemovalOptions, who: str) -> None:
    conn.execute(
        """
        INSERT INTO removal_intents (file_id, actions, object_keys, bytes, reason, requested_by)
        VALUES (%s, %s, %s, %s, %s, %s)
        ON CONFLICT (file_id) DO NOTHING
        """,
        (
            plan.track_id,
            Jsonb(options.as_dict()),
            Jsonb(list(plan.object_keys)),
            plan.bytes,
            plan.reason,
            who,
        ),
    )
    conn.commit()


def _mark_stage_removed(conn: Connection, track_id: str, stages: Sequence[str], what: str) -> None:
    # Inserted where a stopped run left no row: the track sensor would otherwise resume the stage
    # and make again what retention removed.
    conn.execute(
        """
        INSERT INTO track_stages (file_id, stage, status, error, updated_at)
        SELECT %(id)s, stage, 'skipped', %(error)s, now() FROM unnest(%(stages)s::text[]) AS stage
        ON CONFLICT (file_id, stage) DO UPDATE SET status = 'skipped', error = EXCLUDED.error, updated_at = now()
        """,
        {
            "id": track_id,
            "error": f"{what} removed by retention; reprocess to recreate",
            "stages": list(stages),
        },
    )


def _apply_rows(conn: Connection, track_id: str, options: RemovalOptions) -> None:
    """Step 3: one transaction that also drops the intent."""
    with conn.transaction():
        if options.delete_db_entries:
            conn.execute("DELETE FROM music_files WHERE id = %s", (track_id,))  # cascades everywhere
        else:
            if options.delete_original:
                conn.execute(
                    "UPDATE music_files SET original_removed_at = now() WHERE id = %s AND original_removed_at IS NULL",
                    (track_id,),
                )
            if options.delete_converted:
                conn.execute(
                    "UPDATE music_files SET converted_path = NULL, converted_size = NULL, "
                    "converted_duration = NULL WHERE id = %s",
                    (track_id,),
                )
                _mark_stage_removed(conn, track_id, [CONVERTED_AUDIO], "converted audio")
            if options.delete_vectors:
                conn.execute("DELETE FROM embeddings WHERE file_id = %s", (track_id,))
                _mark_stage_removed(conn, track_id, [EMBEDDING], "vectors")
            if options.delete_analysis:
                conn.execute("DELETE FROM comparisons WHERE file_id = %s", (track_id,))
                conn.execute("DELETE FROM lyrics WHERE file_id = %s AND NOT pinned", (track_id,))
                conn.execute("DELETE FROM transcriptions WHERE file_id = %s", (track_id,))
                _mark_stage_removed(conn, track_id, [TRANSCRIPTION, LYRICS, COMPARISON], "analysis")
        conn.execute("DELETE FROM removal_intents WHERE file_id = %s", (track_id,))


def _delete_objects(store: ObjectStore, keys: Sequence[str]) -> None:
    for key in keys:
        store.delete(key)  # S3 DELETE of a missing key succeeds: reruns are harmless


def _remove_locked(
    conn: Connection,
    store: ObjectStore,
    track_id: str,
    result: RemovalResult,
    options: RemovalOptions,
    size: int,
    steps: Callable[[], bool],
) -> None:
    """Run one track's removal ``steps`` under its exclusive lock and account for the outcome
    (``steps`` returns False when, seen under the lock, the track is no longer due)."""
    if not try_exclusive_track_lock(conn, track_id):
        result.deferred.append(track_id)  # a stage or registration holds it: the next run retries
        return
    try:
        if not steps():
            result.renewed.append(track_id)
            return
    except Exception as exc:  # noqa: BLE001 - the intent stays; the next run finishes it
        conn.rollback()
        log.exception("removal of %s failed", track_id)
        result.failed[track_id] = f"{type(exc).__name__}: {exc}"[:300]
    else:
        result.removed.append(track_id)
        if options.delete_db_entries:
            result.tracks_deleted.append(track_id)
        result.bytes_freed += size
        result.vectors_removed |= options.delete_vectors
    finally:
        release_exclusive_track_lock(conn, track_id)


def execute_removals(
    database_url: str,
    store: ObjectStore,
    plans: Sequence[PlannedRemoval],
    options: RemovalOptions,
    *,
    performed_by: str,
) -> RemovalResult:
    """Carry out planned removals; busy tracks are deferred, one track's failure never stops the rest."""
    result = RemovalResult()
    with connect(database_url) as conn:
        for plan in plans:

            def steps(plan: PlannedRemoval = plan) -> bool:
                if plan.due_before is not None:
                    uploaded = latest_upload(conn, plan.track_id)
                    if uploaded is not None and uploaded >= plan.due_before:
                        return False
                _record_intent(conn, plan, options, performed_by)
                _delete_objects(store, plan.object_keys)
                _apply_rows(conn, plan.track_id, options)
                return True

            if tracks.exists(conn, plan.track_id):  # else removed meanwhile by another run
                _remove_locked(conn, store, plan.track_id, result, options, plan.bytes, steps)
            conn.commit()
    return result


_PENDING_SQL = "SELECT file_id, actions, object_keys, bytes FROM removal_intents"


def finish_pending(database_url: str, store: ObjectStore) -> RemovalResult:
    """Complete removals a crashed run left half done (their intents are still recorded)."""
    result = RemovalResult()
    with connect(database_url) as conn:
        pending = conn.execute(f"{_PENDING_SQL} ORDER BY created_at").fetchall()  # noqa: S608 - constant
        conn.commit()
        for track_id, actions, keys, size in pending:
            options = RemovalOptions.from_dict(actions)
            steps = _finishing(conn, store, track_id, keys, options)
            _remove_locked(conn, store, track_id, result, options, size, steps)
    return result


def finish_pending_for(conn: Connection, store: ObjectStore, track_id: str) -> bool:
    """Complete a crashed removal of this one track, if one is recorded, waiting for its lock.
    Registration calls it before storing the same content again: otherwise the next cleanup run
    would finish the old removal and delete the new upload. True when there was one."""
    if conn.execute("SELECT 1 FROM removal_intents WHERE file_id = %s", (track_id,)).fetchone() is None:
        conn.commit()
        return False  # the common case: no lock taken, so a stage at work never delays registration
    wait_exclusive_track_lock(conn, track_id)
    try:
        pending = conn.execute(f"{_PENDING_SQL} WHERE file_id = %s", (track_id,)).fetchone()  # noqa: S608
        if pending is not None:  # else a cleanup run finished it meanwhile
            _, actions, keys, _ = pending
            _finishing(conn, store, track_id, keys, RemovalOptions.from_dict(actions))()
    except Exception:
        conn.rollback()  # the intent stays for the next cleanup run
        raise
    finally:
        release_exclusive_track_lock(conn, track_id)
    return True


def _finishing(
    conn: Connection, store: ObjectStore, track_id: str, keys: list[str], options: RemovalOptions
) -> Callable[[], bool]:
    def steps() -> bool:
        _delete_objects(store, keys)
        _apply_rows(conn, track_id, options)
        return True

    return steps
