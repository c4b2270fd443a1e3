"""Semantic, full-text and hybrid search over transcripts, titles and file names."""

from __future__ import annotations

import csv
import io
import time
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from psycopg import Connection
from psycopg.types.json import Jsonb

from music_api import fulltext
from music_api.auth import require_reader
from music_api.deps import Conn
from music_api.routes.stream import content_disposition
from music_api.schemas import SearchHit, SearchResponse
from music_api.search_client import SemanticUnavailable
from music_core.search import query_words, reciprocal_rank_fusion

router = APIRouter(tags=["search"], dependencies=[Depends(require_reader)])


class Mode(StrEnum):
    hybrid = "hybrid"
    semantic = "semantic"
    fulltext = "fulltext"


_CHUNKS_SQL = "SELECT id, file_id, content FROM embeddings WHERE id = ANY(%s)"

_PGVECTOR_SQL = """
SELECT id, 1 - (embedding::vector({dim}) <=> %s::vector({dim})) AS score
FROM embeddings WHERE model_id = %s
ORDER BY embedding::vector({dim}) <=> %s::vector({dim}) LIMIT %s
"""

_DESCRIBE_SQL = """
SELECT id, original_filename, title, artist, genre, duration FROM music_files WHERE id = ANY(%s)
"""


def semantic(request: Request, conn: Connection, query: str, limit: int) -> list[tuple[str, float, str]]:
    engine = request.app.state.semantic
    found = engine.lookup(query, limit * 5)
    vector, hits = found.vector, found.hits
    if hits is None:  # no FAISS index yet: ask pgvector directly
        literal = "[" + ",".join(f"{x:.7f}" for x in vector) + "]"
        sql = _PGVECTOR_SQL.format(dim=len(vector))
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
    # Every search is logged, whether or not the answer comes from the cache, with the tracks it
    # found when they were computed (one INSERT after the search, not an INSERT and an UPDATE). The
    # log is not worth a disk flush per search: a crash may lose its last fraction of a second.
    computed: list[SearchResponse] = []

    def compute() -> SearchResponse:
        computed.append(_search(request, conn, q, mode, limit))
        return computed[-1]

    try:
        answer = request.app.state.cache.json(request, compute)
    except SemanticUnavailable:  # the search service is down (its client logged it): say so, cache nothing
        raise HTTPException(
            503, "semantic search is unavailable for now; full-text search (mode=fulltext) still works",
            headers={"Retry-After": "10"},
        ) from None  # fmt: skip
    with conn.pipeline():  # both statements in one round trip
        conn.execute("SET LOCAL synchronous_commit = off")
        conn.execute(
            "INSERT INTO search_history (query, mode, user_ip, results) VALUES (%s, %s, %s, %s)",
            (
                q, mode.value, request.client.host if request.client else None,
                Jsonb([r.track_id for r in computed[-1].results]) if computed else None,
            ),
        )  # fmt: skip
    if format is ResultFormat.json:
        return answer
    return render_results(SearchResponse.model_validate_json(answer.body), format)


def _search(request: Request, conn: Connection, q: str, mode: Mode, limit: int) -> SearchResponse:
    started = time.perf_counter()
    lists: dict[str, list[tuple[str, float]]] = {}
    snippets: dict[str, str] = {}
    words = fulltext.prepare(conn, request.app.state.search_stats, q) if mode != Mode.semantic else None
    if words is not None:
        lists["fulltext"] = fulltext.rank(conn, words, limit * 2)
    if mode in (Mode.semantic, Mode.hybrid) and query_words(q):
        hits = semantic(request, conn, q, limit * 2)
        lists["semantic"] = [(t, score) for t, score, _ in hits]
        snippets.update({t: content for t, _, content in hits if content})  # the matching passage
    if mode == Mode.hybrid:
        fused = reciprocal_rank_fusion([[t for t, _ in hits] for hits in lists.values()], limit)
    else:
        fused = next(iter(lists.values()), [])[:limit]
    if words is not None:  # highlighted passages only for the rows shown that have none yet
        snippets.update(fulltext.snippets(conn, words, [t for t, _ in fused if t not in snippets]))
    ranks = {name: {t: i + 1 for i, (t, _) in enumerate(hits)} for name, hits in lists.items()}
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
    return SearchResponse(
        query=q, mode=mode.value, results=results, took_ms=round((time.perf_counter() - started) * 1000, 2)
    )
