from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from psycopg import sql
from psycopg.rows import dict_row

from music_api.auth import require_reader
from music_api.deps import Conn
from music_api.library_query import TrackFilter
from music_api.schemas import Alias, StageState, TrackDetail, TrackPage, TrackSummary, TranscriptionOut

TrackId = Annotated[str, Path(pattern="^[0-9a-f]{64}$", description="SHA-256 of the content")]

router = APIRouter(prefix="/tracks", tags=["library"], dependencies=[Depends(require_reader)])

_LIST_SQL = """
SELECT f.id, f.original_filename AS filename, f.file_size AS size, f.duration, f.genre, f.artist, f.title,
       f.uploaded_at,
       (SELECT count(*) FROM file_aliases a WHERE a.file_id = f.id) AS aliases,
       COALESCE((SELECT jsonb_object_agg(s.stage, s.status) FROM track_stages s WHERE s.file_id = f.id),
                '{{}}'::jsonb) AS stages
FROM music_files f
WHERE {where}
ORDER BY {order}
LIMIT %s OFFSET %s
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


@router.get("/{track_id}", response_model=TrackDetail, summary="Everything known about one track")
def track_detail(conn: Conn, track_id: TrackId) -> TrackDetail:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("SELECT * FROM music_files WHERE id = %s", (track_id,)).fetchone()
        if row is None:
            raise HTTPException(404, "no such track")
        aliases = cur.execute(
            "SELECT original_name AS name, folder, upload_count AS uploads, first_seen_at AS first_seen"
            " FROM file_aliases WHERE file_id = %s ORDER BY id",
            (track_id,),
        ).fetchall()
        stages = cur.execute(
            "SELECT stage, status, error, warnings, attempts, updated_at FROM track_stages WHERE file_id = %s",
            (track_id,),
        ).fetchall()
        transcript = cur.execute(
            "SELECT transcription_text AS text, language, confidence, no_vocals, model_id, model_version,"
            " processing_time, real_time_factor, segments, words FROM transcriptions WHERE file_id = %s"
            " ORDER BY created_at DESC LIMIT 1",
            (track_id,),
        ).fetchone()
    return TrackDetail(
        **{k: row[k] for k in TrackDetail.model_fields if k in row},
        filename=row["original_filename"],
        size=row["file_size"],
        aliases=[Alias(**a) for a in aliases],
        stages={s.pop("stage"): StageState(**s) for s in stages},
        transcription=TranscriptionOut(**{**transcript, "text": transcript["text"] or ""})
        if transcript
        else None,
    )
