"""One cleanup_log row per preview or execution: what, how many, how many bytes, who."""

from __future__ import annotations

from typing import Any

from psycopg import Connection
from psycopg.types.json import Jsonb


def write_cleanup_log(
    conn: Connection,
    *,
    action: str,
    dry_run: bool,
    file_count: int,
    space_freed: int,
    details: dict[str, Any],
    performed_by: str,
) -> str:
    row = conn.execute(
        """
        INSERT INTO cleanup_log (action, dry_run, file_count, space_freed, details, performed_by)
        VALUES (%s, %s, %s, %s, %s, %s) RETURNING id
        """,
        (action, dry_run, file_count, space_freed, Jsonb(details), performed_by[:255]),
    ).fetchone()
    return str(row[0])
