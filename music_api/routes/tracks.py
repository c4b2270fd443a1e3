from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from psycopg.rows import dict_row

from music_api.deps import Conn, require_token
from music_api.schemas import TrackPage, TrackSummary

router = APIRouter(prefix="/tracks", tags=["library"], dependencies=[Depends(require_token)])

_LIST_SQL = """
SELECT f.id, f.original_filename AS filename, f.file_size AS size, f.duration, f.genre, f.artist, f.title,
       f.uploaded_at,
       (SELECT count(*) FROM file_aliases a WHERE a.file_id = f.id) AS aliases,
       COALESCE((SELECT jsonb_object_agg(s.stage, s.status) FROM track_stages s WHERE s.file_id = f.id),
                '{}'::jsonb) AS stages
FROM music_files f
ORDER BY f.uploaded_at DESC, f.seq DESC
LIMIT %s OFFSET %s
"""


@router.get("", response_model=TrackPage, summary="List tracks, newest first")
def list_tracks(
    conn: Conn,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> TrackPage:
    total_row = conn.execute("SELECT count(*) FROM music_files").fetchone()
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_LIST_SQL, (limit, offset)).fetchall()
    return TrackPage(
        total=total_row[0] if total_row else 0,
        limit=limit,
        offset=offset,
        items=[TrackSummary(**row) for row in rows],
    )
