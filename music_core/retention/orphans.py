"""Orphan sweep: objects with no row, rows whose objects are gone, partitions with no row.

Objects are only called orphans after a grace period (registration copies the original before it
inserts the row), and each is deleted under the track's exclusive lock after checking again that no
row or pending registration claims it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from psycopg import Connection, sql

from music_core.db.connection import connect
from music_core.db.locks import release_exclusive_track_lock, try_exclusive_track_lock
from music_core.stage_names import CONVERTED_AUDIO
from music_core.storage import ObjectStore

TRACK_PREFIXES = ("originals/", "converted/", "sidecars/")
_TRACK_KEY = re.compile(
    r"^(?:originals|converted|sidecars)/[0-9a-f]{2}/([0-9a-f]{64})(?:\.flac|\.lrc|\.txt)?$"
)


@dataclass(frozen=True)
class OrphanObject:
    key: str
    size: int
    track_id: str | None  # None when the key does not follow our layout at all


@dataclass
class OrphanReport:
    objects_without_row: list[OrphanObject] = field(default_factory=list)
    rows_without_original: list[str] = field(default_factory=list)
    rows_without_converted: list[str] = field(default_factory=list)
    partitions_without_row: list[str] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(o.size for o in self.objects_without_row)

    def summary(self) -> dict[str, int]:
        return {
            "objects_without_row": len(self.objects_without_row),
            "rows_without_original": len(self.rows_without_original),
            "rows_without_converted": len(self.rows_without_converted),
            "partitions_without_row": len(self.partitions_without_row),
            "bytes": self.bytes,
        }


def track_id_of_key(key: str) -> str | None:
    match = _TRACK_KEY.match(key)
    return match.group(1) if match else None


def find_orphans(
    conn: Connection,
    store: ObjectStore,
    partition_keys: Iterable[str] = (),
    *,
    grace: dt.timedelta = dt.timedelta(hours=1),
    now: dt.datetime | None = None,
) -> OrphanReport:
    now = now or dt.datetime.now(dt.UTC)
    rows = conn.execute(
        "SELECT id, storage_path, original_removed_at IS NOT NULL, converted_path FROM music_files"
    ).fetchall()
    known = {r[0] for r in rows}
    intents = {r[0] for r in conn.execute("SELECT file_id FROM removal_intents").fetchall()}
    present: set[str] = set()
    report = OrphanReport()
    for prefix in TRACK_PREFIXES:
        for obj in store.list(prefix):
            present.add(obj.key)
            track_id = track_id_of_key(obj.key)
            if track_id in known or track_id in intents:
                continue  # intents are finished by the removal code, not swept here
            if obj.last_modified is not None and now - obj.last_modified < grace:
                continue  # possibly a registration between copy and insert
            report.objects_without_row.append(OrphanObject(obj.key, obj.size, track_id))
    for track_id, original, original_removed, converted in rows:
        if track_id in intents:
            continue
        if not original_removed and original not in present:
            report.rows_without_original.append(track_id)
        if converted and converted not in present:
            report.rows_without_converted.append(track_id)
    report.partitions_without_row = sorted(set(partition_keys) - known)
    return report


def repair_orphans(database_url: str, store: ObjectStore, report: OrphanReport) -> dict[str, int]:
    """Delete orphan objects and make rows truthful about what is gone. Returns counts done."""
    done = {"objects_deleted": 0, "bytes_freed": 0, "originals_marked_missing": 0, "converted_cleared": 0}
    with connect(database_url) as conn:
        for orphan in report.objects_without_row:
            if orphan.track_id is not None:
                if not try_exclusive_track_lock(conn, orphan.track_id):
                    continue  # a registration or stage holds it: not an orphan after all
                try:
                    claimed = conn.execute(
                        "SELECT 1 FROM music_files WHERE id = %s", (orphan.track_id,)
                    ).fetchone()
                    conn.commit()
                    if claimed:
                        continue
                    store.delete(orphan.key)
                finally:
                    release_exclusive_track_lock(conn, orphan.track_id)
            else:
                store.delete(orphan.key)
            done["objects_deleted"] += 1
            done["bytes_freed"] += orphan.size
        for track_id in report.rows_without_original:
            with _still_missing(conn, store, track_id, "storage_path") as missing:
                if missing:
                    cur = conn.execute(
                        "UPDATE music_files SET original_removed_at = now() "
                        "WHERE id = %s AND original_removed_at IS NULL",
                        (track_id,),
                    )
                    done["originals_marked_missing"] += cur.rowcount
        for track_id in report.rows_without_converted:
            with _still_missing(conn, store, track_id, "converted_path") as missing:
                if missing:
                    done["converted_cleared"] += _clear_converted(conn, track_id)
    return done


@contextmanager
def _still_missing(conn: Connection, store: ObjectStore, track_id: str, column: str) -> Iterator[bool]:
    """Under the track's exclusive lock: is the object the row names still absent? The report's
    listing is older; a registration or stage may have stored it since (then it is not missing).
    A track busy right now is left for the next sweep. Commits what the block wrote."""
    if not try_exclusive_track_lock(conn, track_id):
        yield False
        return
    try:
        row = conn.execute(
            sql.SQL("SELECT {} FROM music_files WHERE id = %s").format(sql.Identifier(column)), (track_id,)
        ).fetchone()
        yield row is not None and row[0] is not None and store.stat(row[0]) is None
    except BaseException:
        conn.rollback()
        raise
    else:
        conn.commit()
    finally:
        release_exclusive_track_lock(conn, track_id)


def _clear_converted(conn: Connection, track_id: str) -> int:
    cur = conn.execute(
        "UPDATE music_files SET converted_path = NULL, converted_size = NULL, converted_duration = NULL "
        "WHERE id = %s AND converted_path IS NOT NULL",
        (track_id,),
    )
    conn.execute(
        "UPDATE track_stages SET status = 'failed', error = %s, updated_at = now() WHERE file_id = %s AND stage = %s",
        ("converted audio is missing from the bucket; reprocess to recreate", track_id, CONVERTED_AUDIO),
    )
    return cur.rowcount
