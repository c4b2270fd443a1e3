"""Semantic, full-text and hybrid search over transcripts, titles and file names."""

from __future__ import annotations

import csv
import io
import time
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from psycopg import Connection
from psycopg.types.json import Jsonb

from music_api.auth import require_reader
from music_api.deps import Conn
from music_api.routes.stream import content_disposition
from music_api.schemas import SearchHit, SearchResponse
from music_core.search import (
    plan_terms,
    query_words,
    reciprocal_rank_fusion,
    tsquery_any,
)

router = APIRouter(tags=["search"], dependencies=[Depends(require_reader)])


class Mode(StrEnum):
    hybrid = "hybrid"
    semantic = "semantic"
    fulltext = "fulltext"


# Full text in two stages (see music_core.search.plan_terms). The selective words gather candidates
# through the GIN indexes (no tsvector is read), each match adding the word's inverse document
# frequency; only the best ``pool`` documents are read and ranked for proximity with ts_rank_cd.
# Transcripts and lyrics (stemmed English) and names and tags (unstemmed) are gathered separately
# and their scores added. Only the final rows are joined back for the ordering and the snippet,
# which comes from the transcript or else the lyrics.
_LEXEMES_SQL = """
SELECT array(SELECT lexeme FROM unnest(to_tsvector('english', %(q)s))),
       array(SELECT lexeme FROM unnest(to_tsvector('simple', %(q)s)))
"""

_FULLTEXT_SQL = """
WITH gathered AS (
    SELECT h.file_id, t.weight
    FROM unnest(%(gather)s::tsquery[], %(weights)s::float8[]) AS t(query, weight)
    CROSS JOIN LATERAL (
        SELECT file_id FROM transcriptions WHERE search_tsv @@ t.query
        UNION
        SELECT file_id FROM lyrics WHERE search_tsv @@ t.query
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
    CROSS JOIN LATERAL (SELECT id FROM music_files WHERE search_tsv @@ t.query) h
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
SELECT r.file_id, r.rank,
       ts_headline('english', coalesce(b.body, ''), %(highlight)s::tsquery,
                   'MaxFragments=1, MaxWords=24, MinWords=6, StartSel=«, StopSel=»') AS snippet
FROM top r
LEFT JOIN LATERAL (
    SELECT body FROM (
        (SELECT transcription_text AS body, 0 AS preference FROM transcriptions
         WHERE file_id = r.file_id AND search_tsv @@ %(highlight)s::tsquery ORDER BY created_at DESC LIMIT 1)
        UNION ALL
        (SELECT lyrics_text, 1 FROM lyrics
         WHERE file_id = r.file_id AND search_tsv @@ %(highlight)s::tsquery ORDER BY pinned DESC, fetched_at DESC LIMIT 1)
    ) bodies ORDER BY preference LIMIT 1
) b ON true
ORDER BY r.rank DESC, r.seq
"""
MIN_RANKED_POOL = 50  # candidates read and ranked for proximity, at least

_CHUNKS_SQL = "SELECT id, file_id, content FROM embeddings WHERE id = ANY(%s)"

_PGVECTOR_SQL = """
SELECT id, 1 - (embedding::vector({dim}) <=> %s::vector({dim})) AS score
FROM embeddings WHERE model_id = %s
ORDER BY embedding::vector({dim}) <=> %s::vector({dim}) LIMIT %s
"""

_DESCRIBE_SQL = """
SELECT id, original_filename, title, artist, genre, duration FROM music_files WHERE id = ANY(%s)
"""


def fulltext(request: Request, conn: Connection, query: str, limit: int) -> list[tuple[str, float, str]]:
    words = " ".join(query_words(query))
    if not words:
        return []
    content_lexemes, name_lexemes = conn.execute(_LEXEMES_SQL, {"q": words}).fetchone()  # type: ignore[misc]
    stats = request.app.state.search_stats.get(conn)
    content, names = plan_terms(content_lexemes, stats.content), plan_terms(name_lexemes, stats.names)
    gather, weights = content.gather()
    name_gather, name_weights = names.gather()
    params = {
        "gather": gather, "weights": weights, "every": tsquery_any(content.lexemes),
        # The snippet shows where the distinctive words are sung.
        "highlight": tsquery_any([lexeme for lexeme, _ in content.selective] or content.lexemes),
        "name_gather": name_gather, "name_weights": name_weights,
        "pool": max(MIN_RANKED_POOL, limit), "limit": limit,
    }  # fmt: skip
    rows = conn.execute(_FULLTEXT_SQL, params).fetchall()
    return [(r[0], float(r[1]), r[2]) for r in rows]


def semantic(request: Request, conn: Connection, query: str, limit: int) -> list[tuple[str, float, str]]:
    engine = request.app.state.semantic
    vector = engine.embed_query(query)
    hits = engine.search(vector, limit * 5)
    if hits is None:  # no FAISS index yet: ask pgvector directly
        literal = "[" + ",".join(f"{x:.7f}" for x in vector) + "]"
        sql = _PGVECTOR_SQL.format(dim=int(vector.shape[0]))
        hits = [
            (r[0], float(r[1])) for r in conn.execute(sql, (literal, engine.model_id, literal, limit * 5))
        ]  # noqa: S608 - dim is an int
    chunks = {r[0]: (r[1], r[2]) for r in conn.execute(_CHUNKS_SQL, ([h[0] for h in hits],)).fetchall()}
    best: dict[str, tuple[float, str]] = {}
    for emb_id, score in hits:
        if emb_id in chunks:
            track, content = chunks[emb_id]
            if track not in best or score > best[track][0]:
                best[track] = (score, content or "")
    ranked = sorted(best.items(), key=lambda kv: -kv[1][0])[:limit]
    return [(track, score, content) for track, (score, content) in ranked]


class ResultFormat(StrEnum):
    json = "json"
    csv = "csv"
    txt = "txt"


_COLUMNS = ("rank", "track_id", "score", "filename", "title", "artist", "genre", "duration", "snippet")


def _cell(value: object) -> str:
    """Spreadsheet-safe: a cell starting with = + - @ (or a control) is not read as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def render_results(result: SearchResponse, fmt: ResultFormat) -> Response:
    rows = [(i, h.track_id, h.score, h.filename, h.title, h.artist, h.genre, h.duration, h.snippet)
            for i, h in enumerate(result.results, start=1)]  # fmt: skip
    if fmt is ResultFormat.csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(_COLUMNS)
        writer.writerows([[_cell(v) for v in row] for row in rows])
        body, media, name = buffer.getvalue(), "text/csv; charset=utf-8", "search-results.csv"
    else:
        lines = [f"{i}. {fn} ({tid[:12]}) score {sc}" + (f" - {sn}" if sn else "")
                 for i, tid, sc, fn, *_, sn in rows]  # fmt: skip
        body = f"search: {result.query} ({result.mode})\n" + "\n".join(lines) + "\n"
        media, name = "text/plain; charset=utf-8", "search-results.txt"
    return Response(
        body, media_type=media, headers={"Content-Disposition": content_disposition(name, "attachment")}
    )


@router.get("/search", response_model=SearchResponse, summary="Find tracks by what is sung or by name")
def search(
    request: Request,
    conn: Conn,
    q: Annotated[str, Query(min_length=1, max_length=500, description="words, or a misheard lyric")],
    mode: Mode = Mode.hybrid,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    format: ResultFormat = ResultFormat.json,  # noqa: A002 - the public parameter name
) -> Response:
    # Every search is logged, whether or not the answer comes from the cache. The log is not worth a
    # disk flush per search: a crash may lose its last fraction of a second, never the library.
    conn.execute("SET LOCAL synchronous_commit = off")
    logged = conn.execute(
        "INSERT INTO search_history (query, mode, user_ip) VALUES (%s, %s, %s) RETURNING id",
        (q, mode.value, request.client.host if request.client else None),
    ).fetchone()
    answer = request.app.state.cache.json(request, lambda: _search(request, conn, q, mode, limit, logged[0]))
    if format is ResultFormat.json:
        return answer
    return render_results(SearchResponse.model_validate_json(answer.body), format)


def _search(
    request: Request, conn: Connection, q: str, mode: Mode, limit: int, history_id: object
) -> SearchResponse:
    started = time.perf_counter()
    lists: dict[str, list[tuple[str, float, str]]] = {}
    if mode in (Mode.fulltext, Mode.hybrid):
        lists["fulltext"] = fulltext(request, conn, q, limit * 2)
    if mode in (Mode.semantic, Mode.hybrid) and query_words(q):
        lists["semantic"] = semantic(request, conn, q, limit * 2)
    if mode == Mode.hybrid:
        fused = reciprocal_rank_fusion([[t for t, _, _ in hits] for hits in lists.values()], limit)
    else:
        fused = [(t, s) for t, s, _ in next(iter(lists.values()), [])][:limit]
    snippets = {t: snip for hits in lists.values() for t, _, snip in reversed(hits) if snip}
    ranks = {name: {t: i + 1 for i, (t, _, _) in enumerate(hits)} for name, hits in lists.items()}
    info = {r[0]: r for r in conn.execute(_DESCRIBE_SQL, ([t for t, _ in fused],)).fetchall()}
    results = [
        SearchHit(
            track_id=t, score=round(score, 6), filename=info[t][1], title=info[t][2], artist=info[t][3],
            genre=info[t][4], duration=info[t][5], snippet=snippets.get(t),
            ranks={name: r[t] for name, r in ranks.items() if t in r},
        )
        for t, score in fused
        if t in info
    ]  # fmt: skip
    conn.execute(
        "UPDATE search_history SET results = %s WHERE id = %s",
        (Jsonb([r.track_id for r in results]), history_id),
    )
    return SearchResponse(
        query=q, mode=mode.value, results=results, took_ms=round((time.perf_counter() - started) * 1000, 2)
    )
