"""Versioned SQL migrations: ``migrations/NNNN_name.sql`` applied once each, in order, in a transaction.

A PostgreSQL advisory lock serialises concurrent starters (API workers, Dagster code servers, tests).
A migration that rewrites tables names them in a ``-- vacuum after: table, table`` line: they are
vacuumed once the migrations are committed (VACUUM cannot run in a transaction). A rewritten table
has no page marked all-visible, so index-only scans read the table again, and every row's first
reader sets its hint bits: the first bench-api run after migration 0006 was 20 % slower.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

import psycopg
from psycopg import sql

_LOCK_ID = 0x6D75_7369  # "musi"
log = logging.getLogger(__name__)


_VACUUM_AFTER = re.compile(r"^-- vacuum after: (.+)$", re.MULTILINE)


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def vacuum_after(self) -> list[str]:
        return [t.strip() for line in _VACUUM_AFTER.findall(self.sql) for t in line.split(",") if t.strip()]


def available_migrations() -> list[Migration]:
    folder = resources.files("music_core.db") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version, _, rest = entry.name.partition("_")
            found.append(Migration(version, rest.removesuffix(".sql"), entry.read_text()))
    return sorted(found, key=lambda m: m.version)


def migrate(database_url: str) -> list[str]:
    """Apply pending migrations; return the versions applied now."""
    applied_now = []
    with psycopg.connect(database_url) as conn:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version TEXT PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for migration in available_migrations():
                if migration.version in done:
                    continue
                conn.execute(migration.sql.encode())
                conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
                applied_now.append(migration)
        tables = list(dict.fromkeys(t for m in applied_now for t in m.vacuum_after))
        if tables:
            conn.autocommit = True
            try:
                conn.execute(
                    sql.SQL("VACUUM (ANALYZE) {}").format(sql.SQL(", ").join(map(sql.Identifier, tables)))
                )
            except psycopg.Error as exc:  # the schema is in place; autovacuum gets there later
                log.warning(
                    "VACUUM after the migrations failed (%s); queries are slower until autovacuum runs", exc
                )
    return [m.version for m in applied_now]
