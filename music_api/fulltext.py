"""Full-text search in two stages over PostgreSQL tsvectors (see music_core.search.plan_terms)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import Connection

from music_api.term_stats import SearchStatisticsCache
from music_core.search import plan_terms, query_words, tsquery_any

# The selective words gather candidates through the GIN indexes (no tsvector is read), each match
# adding the word's inverse document frequency; only the best ``pool`` documents are read and ranked
# for proximity with ts_rank_cd. Transcripts and lyrics (stemmed English) and names and tags
# (unstemmed) are gathered separately and their scores added. Snippets (ts_headline, about 0.3 ms a
# row) are computed separately, for the rows shown only: from the transcript, or else the lyrics.
# Both sides are folded (music_fold, migration 0006): "cafe" finds "café" and "Mötley" finds "Motley".
# Snippets are cut from the folded text too: the passage the words matched in, highlighted, without
# its accents (cut from the original text, a folded word matched nothing, and no passage was found).
_LEXEMES_SQL = """
SELECT array(SELECT lexeme FROM unnest(to_tsvector('english', music_fold(%(q)s)))),
       array(SELECT lexeme FROM unnest(to_tsvector('simple', music_fold(%(q)s))))
"""

_RANK_SQL = """
WITH gathered AS (
    SELECT h.file_id, t.weight
    FROM unnest(%(gather)s::tsquery[], %(weights)s::float8[]) AS t(query, weight)
    CROSS JOIN LATERAL (
        (SELECT file_id FROM transcriptions WHERE search_tsv @@ t.query LIMIT %(gather_cap)s)
        UNION
        (SELECT file_id FROM lyrics WHERE search_tsv @@ t.query LIMIT %(gather_cap)s)
    ) h
),
candidates AS (
    SELECT file_id, sum(weight) AS weight FROM gathered
    GROUP BY file_id ORDER BY weight DESC, file_id LIMIT %(pool)s
),
content AS (
    SELECT c.file_id, c.weight * (1 + greatest(coalesce(tr.rank, 0), coalesce(ly.rank, 0))) AS rank
    FROM candidates c
    LEFT JOIN LATERAL (
        SELECT ts_rank_cd(search_tsv, %(every)s::tsquery, 32) AS rank FROM transcriptions
        WHERE file_id = c.file_id ORDER BY created_at DESC LIMIT 1
    ) tr ON true
    LEFT JOIN LATERAL (
        SELECT max(ts_rank_cd(search_tsv, %(every)s::tsquery, 32)) AS rank FROM lyrics WHERE file_id = c.file_id
    ) ly ON true
),
names AS (
    SELECT h.id AS file_id, sum(t.weight) AS rank
    FROM unnest(%(name_gather)s::tsquery[], %(name_weights)s::float8[]) AS t(query, weight)
    CROSS JOIN LATERAL (SELECT id FROM music_files WHERE search_tsv @@ t.query LIMIT %(gather_cap)s) h
    GROUP BY h.id ORDER BY rank DESC, h.id LIMIT %(pool)s
),
ranked AS (
    SELECT h.file_id, sum(h.rank) AS rank FROM (SELECT * FROM content UNION ALL SELECT * FROM names) h
    GROUP BY h.file_id
),
top AS (
    SELECT r.file_id, r.rank, f.seq FROM ranked r JOIN music_files f ON f.id = r.file_id
    ORDER BY r.rank DESC, f.seq LIMIT %(limit)s
)
SELECT file_id, rank FROM top ORDER BY rank DESC, seq
"""

# The passage of the transcript (else the lyrics) where the distinctive words are sung.
_SNIPPET_SQL = """
SELECT r.file_id,
       ts_headline('english', music_fold(coalesce(b.body, '')), %(highlight)s::tsquery,
                   'MaxFragments=1, MaxWords=24, MinWords=6, StartSel=«, StopSel=»')
FROM unnest(%(ids)s::char(64)[]) AS r(file_id)
JOIN LATERAL (
    SELECT body FROM (
        (SELECT transcription_text AS body, 0 AS preference FROM transcriptions
         WHERE file_id = r.file_id AND search_tsv @@ %(highlight)s::tsquery ORDER BY created_at DESC LIMIT 1)
        UNION ALL
        (SELECT lyrics_text, 1 FROM lyrics
         WHERE file_id = r.file_id AND search_tsv @@ %(highlight)s::tsquery ORDER BY pinned DESC, fetched_at DESC LIMIT 1)
    ) bodies ORDER BY preference LIMIT 1
) b ON true
"""
MIN_RANKED_POOL = 50  # candidates read and ranked for proximity, at least
# Documents gathered per gathering query and table, at most. A selective word is in at most 10 % of
# the library, so this bites only on the conjunction of common words that a query made of common
# words alone gathers (8,000 of 10,000 songs in bench-api: 38 ms of PostgreSQL per query). Those
# candidates all weigh the same, so which 50 are ranked was arbitrary anyway; now it is cheap.
GATHER_CAP_PER_POOL = 40


@dataclass(frozen=True)
class FulltextQuery:
    params: dict[str, Any]

    @property
    def highlight(self) -> str:
        return self.params["highlight"]


def prepare(conn: Connection, stats: SearchStatisticsCache, query: str) -> FulltextQuery | None:
    """The query's lexemes (stemmed and not), planned against the library's word statistics."""
    words = " ".join(query_words(query))
    if not words:
        return None
    content_lexemes, name_lexemes = conn.execute(_LEXEMES_SQL, {"q": words}).fetchone()  # type: ignore[misc]
    current = stats.get(conn)
    content, names = plan_terms(content_lexemes, current.content), plan_terms(name_lexemes, current.names)
    gather, weights = content.gather()
    name_gather, name_weights = names.gather()
    return FulltextQuery({
        "gather": gather, "weights": weights, "every": tsquery_any(content.lexemes),
        "highlight": tsquery_any([lexeme for lexeme, _ in content.selective] or content.lexemes),
        "name_gather": name_gather, "name_weights": name_weights,
    })  # fmt: skip


def rank(conn: Connection, query: FulltextQuery, limit: int) -> list[tuple[str, float]]:
    pool = max(MIN_RANKED_POOL, limit)
    params = {**query.params, "pool": pool, "gather_cap": pool * GATHER_CAP_PER_POOL, "limit": limit}
    return [(r[0], float(r[1])) for r in conn.execute(_RANK_SQL, params).fetchall()]


def snippets(conn: Connection, query: FulltextQuery, track_ids: list[str]) -> dict[str, str]:
    if not track_ids or not query.params["every"]:
        return {}
    rows = conn.execute(_SNIPPET_SQL, {"highlight": query.highlight, "ids": track_ids}).fetchall()
    return {r[0]: r[1] for r in rows}
