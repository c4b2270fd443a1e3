"""Registration: hash the content, store it under a content-addressed key, record track and alias.

Order matters for "nothing is lost": the content-addressed copy exists before the database row, and
the inbox object is removed only after the row is committed. A crash anywhere leaves either the
inbox object (registration reruns) or a complete track; a rerun never duplicates anything.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from psycopg import Connection
from psycopg_pool import ConnectionPool

from music_core.batching import SIDECAR_SUFFIXES
from music_core.db import tracks
from music_core.db.connection import connect
from music_core.db.locks import shared_track_lock
from music_core.hashing import sha256_chunks, sha256_file
from music_core.lyrics.providers.local import MAX_SIDECAR_BYTES
from music_core.naming import (
    ORIGINAL_NAME_META,
    decode_original_name,
    folder_of,
    name_below_prefix,
    original_key,
    sidecar_key,
)
from music_core.retention.removal import finish_pending_for
from music_core.storage import ObjectStore


@dataclass(frozen=True)
class RegisteredUpload:
    name: str
    source: str
    track_id: str
    created: bool
    duplicate_of: str | None  # the first name of this content when this upload is another copy


def _content_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def _record(conn: Connection, *, track_id: str, size: int, name: str, source: str) -> RegisteredUpload:
    with conn.transaction():
        reg = tracks.register(
            conn,
            track_id=track_id,
            size=size,
            name=name,
            object_key=source,
            folder=folder_of(name),
            storage_path=original_key(track_id),
            content_type=_content_type(name),
        )
    duplicate_of = None if reg.original_filename == name else reg.original_filename
    return RegisteredUpload(name, source, track_id, reg.created, duplicate_of)


@contextmanager
def registration_lock(conn: Connection, store: ObjectStore, track_id: str) -> Iterator[None]:
    """The track's shared lock: a removal of this content in progress finishes first (and one a
    crash left half done is finished now), then the content is stored anew."""
    finish_pending_for(conn, store, track_id)
    with shared_track_lock(conn, track_id):
        yield


def register_inbox_object(
    store: ObjectStore, database_url: str, key: str, prefix: str
) -> RegisteredUpload | None:
    """Register one inbox object and remove it from the inbox. None when it vanished meanwhile."""
    info = store.stat(key)
    if info is None:
        return None
    meta = info.metadata or {}
    name = decode_original_name(meta[ORIGINAL_NAME_META]) if ORIGINAL_NAME_META in meta else None
    name = name or name_below_prefix(key, prefix)
    track_id, size = sha256_chunks(store.iter_chunks(key))
    dest = original_key(track_id)
    with connect(database_url) as conn, registration_lock(conn, store, track_id):
        if store.stat(dest) is None:
            # Copy only the version we hashed: a concurrent overwrite makes this fail and rerun.
            store.copy(key, dest, size, match_etag=info.etag)
        copied = store.stat(dest)
        if copied is None or copied.size != size:
            raise RuntimeError(f"copy of {key!r} to {dest!r} is incomplete; inbox object kept")
        result = _record(conn, track_id=track_id, size=size, name=name, source=key)
    current = store.stat(key)
    if current is not None and current.etag == info.etag:
        store.delete(key)
    return result


def register_local_file(
    store: ObjectStore, database_url: str, path: Path, name: str, *, pool: ConnectionPool | None = None
) -> RegisteredUpload:
    """Register a local file directly (no inbox round trip), as `music-analyzer process` does.
    A ``.lrc`` or ``.txt`` beside it travels along as the track's lyrics sidecar. With ``pool``, a
    batch reuses connections instead of opening one per file."""
    track_id, size = sha256_file(path)
    dest = original_key(track_id)
    with (
        pool.connection() if pool else connect(database_url) as conn,
        registration_lock(conn, store, track_id),
    ):
        existing = store.stat(dest)
        if existing is None or existing.size != size:
            store.put_file(dest, path, _content_type(name))
        for suffix in SIDECAR_SUFFIXES:
            sidecar = path.with_suffix(suffix)
            if sidecar.is_file() and sidecar.stat().st_size <= MAX_SIDECAR_BYTES:
                store.put_file(sidecar_key(track_id, suffix), sidecar, "text/plain; charset=utf-8")
                break
        return _record(conn, track_id=track_id, size=size, name=name, source=str(path))
