from __future__ import annotations

from contextlib import ExitStack
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from psycopg import Connection, sql
from psycopg.rows import dict_row
from pydantic import BaseModel, Field

from music_api.auth import require_reader
from music_api.deps import Conn
from music_api.library_query import TrackFilter
from music_api.schemas import (
    Alias,
    ComparisonOut,
    LyricsOut,
    StageState,
    TrackDetail,
    TrackPage,
    TrackSummary,
    TranscriptionOut,
)

TrackId = Annotated[str, Path(pattern="^[0-9a-f]{64}$", description="SHA-256 of the content")]

router = APIRouter(prefix="/tracks", tags=["library"], dependencies=[Depends(require_reader)])

# The page's ids first (an index can serve the order), then the per-track details for those rows only.
_LIST_SQL = """
WITH page AS (SELECT f.id FROM music_files f WHERE {where} ORDER BY {order} LIMIT %s OFFSET %s)
SELECT f.id, f.original_filename AS filename, f.file_size AS size, f.duration, f.genre, f.artist, f.title,
       f.uploaded_at,
       (SELECT count(*) FROM file_aliases a WHERE a.file_id = f.id) AS aliases,
       COALESCE((SELECT jsonb_object_agg(s.stage, s.status) FROM track_stages s WHERE s.file_id = f.id),
                '{{}}'::jsonb) AS stages
FROM page JOIN music_files f ON f.id = page.id
ORDER BY {order}
"""


@router.get("", response_model=TrackPage, summary="List, filter and sort tracks")
def list_tracks(
    conn: Conn,
    filters: Annotated[TrackFilter, Depends()],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> TrackPage:
    where, params = filters.where()
    total_row = conn.execute(
        sql.SQL("SELECT count(*) FROM music_files f WHERE {}").format(where), params
    ).fetchone()
    query = sql.SQL(_LIST_SQL).format(where=where, order=filters.order_by())
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(query, [*params, limit, offset]).fetchall()
    return TrackPage(
        total=total_row[0] if total_row else 0,
        limit=limit,
        offset=offset,
        items=[TrackSummary(**row) for row in rows],
    )


class Selection(BaseModel):
    ids: list[Annotated[str, Field(pattern="^[0-9a-f]{64}$")]] = Field(min_length=1, max_length=10_000)


_SELECTION_SQL = """
SELECT {key} AS k, count(*), coalesce(sum(file_size), 0), coalesce(sum(duration), 0)
FROM music_files WHERE id = ANY(%s) GROUP BY k ORDER BY 2 DESC, 1
"""


@router.post("/stats", summary="Counts, sizes and durations of a selection, by genre and type")
def selection_stats(conn: Conn, selection: Selection) -> dict[str, object]:
    ids = list(dict.fromkeys(selection.ids))
    groups = {}
    for name, key in (
        ("by_genre", "coalesce(genre, 'Unknown')"),
        ("by_type", "coalesce(lower(substring(original_filename from '\\.([^./]+)$')), 'none')"),
    ):
        rows = conn.execute(sql.SQL(_SELECTION_SQL).format(key=sql.SQL(key)), (ids,)).fetchall()
        groups[name] = [
            {"key": r[0], "tracks": r[1], "bytes": int(r[2]), "seconds": float(r[3])} for r in rows
        ]
    total = conn.execute(
        "SELECT count(*), coalesce(sum(file_size), 0), coalesce(sum(duration), 0),"
        " count(*) FILTER (WHERE EXISTS (SELECT 1 FROM transcriptions t WHERE t.file_id = f.id AND NOT t.no_vocals)),"
        " count(*) FILTER (WHERE EXISTS (SELECT 1 FROM lyrics l WHERE l.file_id = f.id))"
        " FROM music_files f WHERE id = ANY(%s)",
        (ids,),
    ).fetchone()
    return {
        "requested": len(ids), "found": total[0], "bytes": int(total[1]), "seconds": float(total[2]),
        "transcribed": total[3], "with_lyrics": total[4], **groups,
    }  # fmt: skip


@router.get("/{track_id}", response_model=TrackDetail, summary="Everything known about one track")
def track_detail(request: Request, conn: Conn, track_id: TrackId) -> Response:
    return request.app.state.cache.json(request, lambda: _track_detail(conn, track_id))


_DETAIL_QUERIES = (
    "SELECT * FROM music_files WHERE id = %s",
    "SELECT original_name AS name, folder, upload_count AS uploads, first_seen_at AS first_seen"
    " FROM file_aliases WHERE file_id = %s ORDER BY id",
    "SELECT stage, status, error, warnings, attempts, updated_at FROM track_stages WHERE file_id = %s",
    "SELECT transcription_text AS text, language, confidence, no_vocals, model_id, model_version,"
    " processing_time, real_time_factor, segments, words FROM transcriptions WHERE file_id = %s"
    " ORDER BY created_at DESC LIMIT 1",
    "SELECT source, lyrics_text AS text, synced_lyrics AS synced, instrumental, url, pinned FROM lyrics"
    " WHERE file_id = %s ORDER BY pinned DESC, fetched_at DESC LIMIT 1",
    "SELECT wer, cer, similarity, reasons, alignment, synced_lrc, llm_notes FROM comparisons WHERE file_id = %s"
    " ORDER BY created_at DESC LIMIT 1",
)


def _track_detail(conn: Connection, track_id: str) -> TrackDetail:
    # Pipeline mode: the six queries travel to PostgreSQL together and come back in one round trip.
    with ExitStack() as open_cursors:
        cursors = [open_cursors.enter_context(conn.cursor(row_factory=dict_row)) for _ in _DETAIL_QUERIES]
        with conn.pipeline():
            for cur, query in zip(cursors, _DETAIL_QUERIES, strict=True):
                cur.execute(query, (track_id,))
        row = cursors[0].fetchone()
        if row is None:
            raise HTTPException(404, "no such track")
        aliases, stages = cursors[1].fetchall(), cursors[2].fetchall()
        transcript, lyrics, compared = (cur.fetchone() for cur in cursors[3:])
    comparison = None
    if compared:
        alignment = compared.pop("alignment") or {}
        comparison = ComparisonOut(
            **compared, alignment=alignment.get("ops", []), lines=alignment.get("lines", []),
            lrc_timing=alignment.get("lrc_timing"),
        )  # fmt: skip
    return TrackDetail(
        **{k: row[k] for k in TrackDetail.model_fields if k in row},
        filename=row["original_filename"],
        size=row["file_size"],
        aliases=[Alias(**a) for a in aliases],
        stages={s.pop("stage"): StageState(**s) for s in stages},
        transcription=TranscriptionOut(**{**transcript, "text": transcript["text"] or ""})
        if transcript
        else None,
        lyrics=LyricsOut(**lyrics) if lyrics else None,
        comparison=comparison,
    )
