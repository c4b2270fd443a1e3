from __future__ import annotations

import psycopg


def connect(database_url: str) -> psycopg.Connection:
    """A short-lived connection; ``with connect(url) as conn`` commits on success, rolls back on error."""
    return psycopg.connect(database_url, connect_timeout=10, application_name="music-analyzer")
