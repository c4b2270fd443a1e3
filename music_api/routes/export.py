"""Downloads and batch export, streamed with constant memory."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from music_api.auth import require_reader
from music_api.deps import Conn, Store
from music_api.routes.stream import CHUNK, content_disposition
from music_api.routes.tracks import TrackId
from music_core.archive import Member, tar_gz_stream, zip_stream
from music_core.naming import portable_name
from music_core.storage import ObjectStore

router = APIRouter(tags=["export"], dependencies=[Depends(require_reader)])
HEX64 = r"^[0-9a-f]{64}$"


class ArchiveFormat(StrEnum):
    zip = "zip"
    tar_gz = "tar.gz"


class Part(StrEnum):
    original = "original"
    converted = "converted"
    transcription = "transcription"
    lyrics = "lyrics"  # official lyrics as .txt, and synced lines as .lrc


class ExportRequest(BaseModel):
    ids: list[Annotated[str, Field(pattern=HEX64)]] = Field(min_length=1, max_length=10_000)
    format: ArchiveFormat = ArchiveFormat.zip
    include: list[Part] = Field(default_factory=lambda: list(Part), min_length=1)


def _object(store: ObjectStore, key: str) -> Iterator[bytes]:
    yield from store.iter_chunks(key, CHUNK)


def _text_member(path: str, text: str, when: dt.datetime) -> Member:
    data = text.encode()
    return Member(path, len(data), when, lambda: [data])


_EXPORT_SQL = """
SELECT f.id, f.original_filename, f.storage_path, f.converted_path, f.genre, f.title, f.artist, f.album,
       f.duration, f.file_size, f.uploaded_at,
       (SELECT transcription_text FROM transcriptions t WHERE t.file_id = f.id ORDER BY created_at DESC LIMIT 1),
       l.lyrics_text,
       COALESCE(l.synced_lyrics,
                (SELECT synced_lrc FROM comparisons c WHERE c.file_id = f.id ORDER BY created_at DESC LIMIT 1))
FROM music_files f
LEFT JOIN LATERAL (SELECT lyrics_text, synced_lyrics FROM lyrics x WHERE x.file_id = f.id
                   ORDER BY x.pinned DESC, x.fetched_at DESC LIMIT 1) l ON TRUE
WHERE f.id = ANY(%s) ORDER BY f.seq
"""


def _members(store: ObjectStore, rows: list[tuple], include: set[Part]) -> Iterator[Member]:
    now = dt.datetime.now(dt.UTC)
    metadata = []
    for row in rows:
        tid, name, original, converted, genre, title, artist, album, duration, size, uploaded, text = row[:12]
        lyrics_text, lrc = row[12:]
        base_name = portable_name(name.rsplit("/", 1)[-1])
        stem = portable_name(base_name.rsplit(".", 1)[0] or tid[:12])
        label = portable_name(title or stem).encode()[:180].decode(errors="ignore").rstrip(". ") or "_"
        folder = f"{portable_name(genre or 'Unknown genre')}/{label} [{tid[:8]}]"  # one level each
        entry = {"track_id": tid, "filename": name, "genre": genre, "title": title, "artist": artist,
                 "album": album, "duration": duration, "size": size, "uploaded_at": uploaded.isoformat(),
                 "files": []}  # fmt: skip
        for part, key, member_name in (
            (Part.original, original, base_name),
            (Part.converted, converted, f"{stem}.16k.flac"),
        ):
            info = store.stat(key) if part in include and key else None
            if info is not None:
                path = f"{folder}/{part.value}/{member_name}"
                entry["files"].append(path)
                yield Member(path, info.size, info.last_modified or now, lambda k=key: _object(store, k))
        if Part.transcription in include and text:
            path = f"{folder}/transcription/{stem}.txt"
            entry["files"].append(path)
            yield _text_member(path, text + "\n", now)
        if Part.lyrics in include:
            for body, suffix in ((lyrics_text, ".txt"), (lrc, ".lrc")):
                if body:  # untrusted text, stored and exported as text only
                    path = f"{folder}/lyrics/{stem}{suffix}"
                    entry["files"].append(path)
                    yield _text_member(path, body.rstrip("\n") + "\n", now)
        metadata.append(entry)
    yield _text_member(
        "export_metadata.json",
        json.dumps({"exported_at": now.isoformat(), "tracks": metadata}, indent=1, ensure_ascii=False),
        now,
    )


@router.post("/export", summary="Stream a zip or tar.gz of selected tracks")
def export(request: ExportRequest, conn: Conn, store: Store) -> StreamingResponse:
    rows = conn.execute(_EXPORT_SQL, (list(dict.fromkeys(request.ids)),)).fetchall()
    if not rows:
        raise HTTPException(404, "none of these tracks exist")
    members = _members(store, rows, set(request.include))
    if request.format is ArchiveFormat.zip:
        body, media, name = zip_stream(members), "application/zip", "music-export.zip"
    else:
        body, media, name = tar_gz_stream(members), "application/gzip", "music-export.tar.gz"
    return StreamingResponse(
        body, media_type=media, headers={"Content-Disposition": content_disposition(name, "attachment")}
    )


@router.get("/tracks/{track_id}/transcription.txt", summary="The transcript as plain text")
def transcription_txt(conn: Conn, track_id: TrackId) -> Response:
    row = conn.execute(
        "SELECT f.original_filename, t.transcription_text FROM music_files f JOIN transcriptions t"
        " ON t.file_id = f.id WHERE f.id = %s ORDER BY t.created_at DESC LIMIT 1",
        (track_id,),
    ).fetchone()
    if row is None:
        raise HTTPException(404, "no transcription for this track")
    name = row[0].rsplit("/", 1)[-1].rsplit(".", 1)[0] + ".txt"
    return Response(
        (row[1] or "") + "\n",
        media_type="text/plain; charset=utf-8",
        headers={"Content-Disposition": content_disposition(name, "attachment")},
    )


@router.get("/tracks/{track_id}/lyrics.txt", summary="The official lyrics as plain text")
def lyrics_txt(conn: Conn, track_id: TrackId) -> Response:
    return _text_download(conn, track_id, "lyrics_text", "lyrics", ".lyrics.txt", "text/plain; charset=utf-8")


@router.get(
    "/tracks/{track_id}/lyrics.lrc", summary="Synced lyrics (LRC), aligned to the transcript's word times"
)
def lyrics_lrc(conn: Conn, track_id: TrackId) -> Response:
    return _text_download(
        conn, track_id, "synced_lrc", "comparisons", ".lrc", "application/x-lrc; charset=utf-8"
    )


_TEXT_SQL = {
    ("lyrics_text", "lyrics"): "SELECT f.original_filename, x.lyrics_text FROM music_files f JOIN lyrics x"
    " ON x.file_id = f.id WHERE f.id = %s ORDER BY x.pinned DESC, x.fetched_at DESC LIMIT 1",
    (
        "synced_lrc",
        "comparisons",
    ): "SELECT f.original_filename, x.synced_lrc FROM music_files f JOIN comparisons x"
    " ON x.file_id = f.id WHERE f.id = %s ORDER BY x.created_at DESC LIMIT 1",
}


_MISSING = {"lyrics": "no lyrics for this track", "comparisons": "no synced lyrics (LRC) for this track yet"}


def _text_download(conn: Conn, track_id: str, column: str, table: str, suffix: str, media: str) -> Response:
    row = conn.execute(_TEXT_SQL[(column, table)], (track_id,)).fetchone()
    if row is None or not row[1]:
        raise HTTPException(404, _MISSING[table])
    name = row[0].rsplit("/", 1)[-1].rsplit(".", 1)[0] + suffix
    return Response(
        row[1].rstrip("\n") + "\n",  # one final newline, as every text download
        media_type=media,
        headers={"Content-Disposition": content_disposition(name, "attachment")},
    )


class Selection(BaseModel):
    ids: list[Annotated[str, Field(pattern=HEX64)]] = Field(min_length=1, max_length=10_000)


@router.post("/export/transcriptions.csv", summary="Transcriptions of selected tracks as CSV (streamed)")
def transcriptions_csv(selection: Selection, request: Request) -> StreamingResponse:
    from music_api.routes.search import _cell

    pool = request.app.state.pool
    ids = list(dict.fromkeys(selection.ids))
    with pool.connection() as conn:
        if conn.execute("SELECT 1 FROM music_files WHERE id = ANY(%s) LIMIT 1", (ids,)).fetchone() is None:
            raise HTTPException(404, "none of these tracks exist")  # as POST /export answers

    def rows() -> Iterator[bytes]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["track_id", "filename", "language", "confidence", "no_vocals", "model_id", "text"])
        with pool.connection() as conn, conn.cursor(name="transcripts_csv") as cur:  # server-side cursor
            cur.execute(
                "SELECT f.id, f.original_filename, t.language, t.confidence, t.no_vocals, t.model_id,"
                " t.transcription_text FROM music_files f JOIN transcriptions t ON t.file_id = f.id"
                " WHERE f.id = ANY(%s) ORDER BY f.seq, t.created_at",
                (ids,),
            )
            for record in cur:
                writer.writerow([_cell(v) for v in record])
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue().encode()

    return StreamingResponse(rows(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": content_disposition("transcriptions.csv", "attachment")})  # fmt: skip
