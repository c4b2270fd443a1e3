"""Versioned migrations on a fresh database of the real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from music_core.db.migrate import available_migrations, migrate
from music_core.embedded import ServiceEndpoints

REWRITTEN = ["music_files", "transcriptions", "lyrics"]  # by 0006 (accent folding)


@pytest.fixture
def fresh_database(services: ServiceEndpoints) -> Iterator[str]:
    name = f"migrate_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(services.database_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_conninfo(services.database_url, dbname=name)
    finally:
        with psycopg.connect(services.database_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_migrations_apply_once_and_vacuum_the_tables_they_rewrote(fresh_database: str) -> None:
    versions = [m.version for m in available_migrations()]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    assert migrate(fresh_database) == versions
    with psycopg.connect(fresh_database) as conn:
        vacuumed = dict(
            conn.execute(
                "SELECT relname, last_vacuum IS NOT NULL FROM pg_stat_user_tables WHERE relname = ANY(%s)",
                (REWRITTEN + ["search_history", "embeddings"],),
            ).fetchall()
        )
        folded = conn.execute("SELECT music_fold('Mötley Crüe, Ærø, ﬁn, Straße, Þór Ðóra')").fetchone()
    assert vacuumed == {"music_files": True, "transcriptions": True, "lyrics": True,
                        "search_history": False, "embeddings": False}  # fmt: skip
    assert folded == ("Motley Crue, AEro, fin, Strasse, THor Dora",)
    assert migrate(fresh_database) == []  # nothing twice


def test_a_migration_names_the_tables_to_vacuum_after_it() -> None:
    by_version = {m.version: m for m in available_migrations()}
    assert by_version["0006"].vacuum_after == REWRITTEN
    assert by_version["0001"].vacuum_after == []
