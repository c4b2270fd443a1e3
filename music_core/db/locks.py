"""Per-track advisory locks: stages and registration hold a shared lock, removal an exclusive one.

A track being processed or re-uploaded is therefore never removed underneath the work, and a
removal in progress makes a concurrent registration wait until it is finished (and then register
the content afresh). Session-level locks, so they span the object-store work outside transactions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from psycopg import Connection

_NAMESPACE = 0x4D55  # keeps track locks apart from other advisory locks ("MU")


def track_lock_key(track_id: str) -> int:
    """A stable signed 64-bit key from the hex content hash (56 bits of it, namespaced)."""
    return (_NAMESPACE << 48) ^ int(track_id[:14], 16)


@contextmanager
def shared_track_lock(conn: Connection, track_id: str) -> Iterator[None]:
    """Wait for any removal of this track to finish, and keep removals out until the block ends."""
    key = track_lock_key(track_id)
    conn.execute("SELECT pg_advisory_lock_shared(%s)", (key,))
    _end_transaction(conn)  # never sit "idle in transaction" while the work runs
    try:
        yield
    finally:
        conn.execute("SELECT pg_advisory_unlock_shared(%s)", (key,))
        _end_transaction(conn)


def _end_transaction(conn: Connection) -> None:
    if not conn.autocommit:
        conn.commit()


def try_exclusive_track_lock(conn: Connection, track_id: str) -> bool:
    """Take the exclusive lock unless a stage or registration holds the track right now."""
    taken = bool(conn.execute("SELECT pg_try_advisory_lock(%s)", (track_lock_key(track_id),)).fetchone()[0])
    _end_transaction(conn)
    return taken


def wait_exclusive_track_lock(conn: Connection, track_id: str) -> None:
    """Take the exclusive lock, waiting for the stages and registrations that hold the track."""
    conn.execute("SELECT pg_advisory_lock(%s)", (track_lock_key(track_id),))
    _end_transaction(conn)


def release_exclusive_track_lock(conn: Connection, track_id: str) -> None:
    conn.execute("SELECT pg_advisory_unlock(%s)", (track_lock_key(track_id),))
    _end_transaction(conn)
