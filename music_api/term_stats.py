"""Document frequencies of the commonest full-text lexemes, read from PostgreSQL's own statistics
(pg_stats, kept by ANALYZE/autovacuum) and kept per process for a few minutes."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from psycopg import Connection

from music_core.search import TermStatistics

# most_common_elem_freqs lists one fraction per element, then the minimum, the maximum and the null
# fraction of the elements. reltuples is ANALYZE's row count estimate.
_STATS_SQL = """
SELECT s.tablename, c.reltuples, s.most_common_elems::text::text[], s.most_common_elem_freqs
FROM pg_stats s JOIN pg_class c ON c.relname = s.tablename AND c.relnamespace = s.schemaname::regnamespace
WHERE s.schemaname = current_schema() AND s.attname = 'search_tsv'
  AND s.tablename IN ('transcriptions', 'lyrics', 'music_files')
"""
CONTENT_TABLES = ("transcriptions", "lyrics")  # stemmed English: what is sung
NAME_TABLES = ("music_files",)  # unstemmed: titles, artists, albums, genres, file names

StatsRow = tuple[str, float, list[str] | None, list[float] | None]


@dataclass(frozen=True)
class SearchStatistics:
    content: TermStatistics
    names: TermStatistics


def merged_statistics(rows: list[StatsRow], tables: tuple[str, ...]) -> TermStatistics:
    """One view over several tables, each weighted by its row count: a lexeme's fraction of all their
    rows. Where a table does not list a lexeme, its share is bounded by that table's listing floor."""
    listed: list[tuple[float, dict[str, float], float]] = []  # (rows, fractions, floor)
    for table, count, elements, freqs in rows:
        if table in tables and elements and freqs and count > 0:
            fractions = dict(zip(elements, freqs[: len(elements)], strict=True))
            listed.append((count, fractions, min(fractions.values())))
    total = sum(count for count, _, _ in listed)
    if not total:
        return TermStatistics({}, None)
    lexemes = {lexeme for _, fractions, _ in listed for lexeme in fractions}
    merged = {
        lexeme: sum(count * fractions.get(lexeme, floor) for count, fractions, floor in listed) / total
        for lexeme in lexemes
    }
    return TermStatistics(merged, sum(count * floor for count, _, floor in listed) / total)


def read_search_statistics(conn: Connection) -> SearchStatistics:
    rows = conn.execute(_STATS_SQL).fetchall()
    return SearchStatistics(merged_statistics(rows, CONTENT_TABLES), merged_statistics(rows, NAME_TABLES))


class SearchStatisticsCache:
    def __init__(self, ttl_seconds: float = 300.0) -> None:
        self.ttl_seconds = ttl_seconds
        self._lock = threading.Lock()
        self._stats: SearchStatistics | None = None
        self._read_at = 0.0

    def get(self, conn: Connection) -> SearchStatistics:
        with self._lock:
            if self._stats is None or time.monotonic() - self._read_at > self.ttl_seconds:
                self._stats = read_search_statistics(conn)
                self._read_at = time.monotonic()
            return self._stats
