"""The Dagster instance home: $DAGSTER_HOME with this project's dagster.yaml."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.utils import create_pg_engine
from sqlalchemy.pool import NullPool

from music_core.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def prepare_dagster_home(settings: Settings) -> Path:
    home = settings.data_path / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    return home


def keep_storage_connections(instance: dg.DagsterInstance) -> None:
    """Reuse the instance's storage connections for this process's runs.

    A run over many partitions stores several events per partition, and Dagster's default opens a
    new PostgreSQL connection for each one; that cost more than the work for short tracks. The pools
    live until the instance is disposed.
    """
    events = instance.event_log_storage
    engine = getattr(events, "_engine", None)  # dagster-postgres internals, pinned in pyproject.toml
    if (
        not isinstance(events, PostgresEventLogStorage)
        or engine is None
        or not isinstance(engine.pool, NullPool)
    ):
        return  # not PostgreSQL (nothing to gain), pooled already, or internals that changed
    instance.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=4)  # public API
    # Storing a partitioned materialization opens a second connection inside the first (to look up
    # the tags table); with the pool of one set above, that one would be opened and closed for every
    # event. tests/test_ingest_concurrency.py counts the connections.
    pooled = getattr(events, "_engine", None)
    events._engine = create_pg_engine(
        events.postgres_url, getattr(events, "_token_provider", None), isolation_level="AUTOCOMMIT",
        pool_size=3, max_overflow=4, pool_recycle=3600,
    )  # fmt: skip
    if pooled is not None:
        pooled.dispose()
