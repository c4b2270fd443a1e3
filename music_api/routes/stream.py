"""Audio streaming straight from the object store, with HTTP Range (RFC 9110): 206, multipart
byteranges, 416, If-Range and HEAD. Only the requested bytes are fetched, in bounded chunks. With
MUSIC_STREAM_REDIRECT the API answers with a 307 to a short-lived presigned URL instead."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from minio.error import S3Error

from music_api.auth import require_reader
from music_api.deps import Conn, Store
from music_api.routes.tracks import TrackId
from music_core.http_range import ByteRange, RangeNotSatisfiable, parse_range
from music_core.storage import ObjectStore

router = APIRouter(tags=["streaming"], dependencies=[Depends(require_reader)])
CHUNK = 1024 * 1024


class Version(StrEnum):
    original = "original"
    converted = "converted"


def content_disposition(filename: str, disposition: str = "inline") -> str:
    """Safe for any name: an ASCII fallback plus RFC 5987 UTF-8, no quotes or CR/LF can break out."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;' else "_" for c in filename) or "audio"
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _body(store: ObjectStore, key: str, start: int, length: int) -> Iterator[bytes]:
    return store.iter_chunks(key, CHUNK, offset=start, length=length)


def _multipart(
    store: ObjectStore, key: str, ranges: list[ByteRange], size: int, content_type: str, boundary: str
) -> tuple[Iterator[bytes], int]:
    heads = [
        f"\r\n--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: {r.content_range(size)}\r\n\r\n".encode()
        for r in ranges
    ]
    tail = f"\r\n--{boundary}--\r\n".encode()
    length = sum(len(h) + r.length for h, r in zip(heads, ranges, strict=True)) + len(tail)

    def body() -> Iterator[bytes]:
        for head, r in zip(heads, ranges, strict=True):
            yield head
            yield from _body(store, key, r.start, r.length)
        yield tail

    return body(), length


def _one_request(
    store: ObjectStore,
    key: str,
    range_header: str | None,
    size: int,
    headers: dict[str, str],
    content_type: str,
) -> Response | None:
    """The common GET (whole object or one range, no If-Range) with a single object-store request: the
    range is resolved against the recorded size, and the object's own size and etag come back with its
    bytes. None when the general path must decide (several ranges, 416, a size that differs)."""
    try:
        ranges = parse_range(range_header, size)
    except RangeNotSatisfiable:
        return None
    if ranges is not None and len(ranges) != 1:
        return None
    r = ranges[0] if ranges else None
    try:
        opened = store.open_stream(key, CHUNK, offset=r.start if r else 0, length=r.length if r else 0)
    except S3Error:
        return None  # e.g. InvalidRange because the object is not the recorded size
    if opened is None:
        raise HTTPException(404, "audio object is missing from the bucket")
    info, chunks = opened
    if info.size != size:
        chunks.close()
        return None
    headers = {**headers, "ETag": f'"{info.etag}"'}
    if r is None:
        headers["Content-Length"] = str(size)
        return StreamingResponse(chunks, headers=headers, media_type=content_type)
    headers |= {"Content-Range": r.content_range(size), "Content-Length": str(r.length)}
    return StreamingResponse(chunks, status_code=206, headers=headers, media_type=content_type)


def _redirect(
    store: ObjectStore, key: str, seconds: int, headers: dict[str, str], content_type: str
) -> Response:
    """307 to a presigned URL for this object (ranges and seeking then go to the object store)."""
    if store.stat(key) is None:
        raise HTTPException(404, "audio object is missing from the bucket")
    url = store.presigned_get(
        key,
        dt.timedelta(seconds=seconds),
        {
            "response-content-type": content_type,
            "response-content-disposition": headers["Content-Disposition"],
        },
    )
    return RedirectResponse(url, status_code=307, headers={"Cache-Control": "private, no-store"})


@router.head("/tracks/{track_id}/audio", summary="Headers of the audio stream", operation_id="head_audio")
@router.get("/tracks/{track_id}/audio", summary="Stream audio (seekable)", operation_id="stream_audio")
def stream_audio(
    request: Request,
    conn: Conn,
    store: Store,
    track_id: TrackId,
    version: Annotated[Version, Query()] = Version.original,
) -> Response:
    row = conn.execute(
        "SELECT storage_path, converted_path, content_type, original_filename, file_size, converted_size"
        " FROM music_files WHERE id = %s",
        (track_id,),
    ).fetchone()
    if row is None:
        raise HTTPException(404, "no such track")
    key = row[0] if version is Version.original else row[1]
    if key is None:
        raise HTTPException(404, "this track has no converted audio yet")
    content_type = "audio/flac" if version is Version.converted else (row[2] or "application/octet-stream")
    name = row[3].rsplit("/", 1)[-1]
    if version is Version.converted:
        name = name.rsplit(".", 1)[0] + ".16k.flac"
    headers = {"Accept-Ranges": "bytes", "Content-Disposition": content_disposition(name)}
    settings = request.app.state.settings
    if settings.stream_redirect:
        return _redirect(store, key, settings.stream_redirect_seconds, headers, content_type)
    range_header = request.headers.get("range")
    if_range = request.headers.get("if-range")
    recorded_size = row[4] if version is Version.original else row[5]
    if request.method == "GET" and if_range is None and recorded_size is not None:
        fast = _one_request(store, key, range_header, recorded_size, headers, content_type)
        if fast is not None:
            return fast
    info = store.stat(key)
    if info is None:
        raise HTTPException(404, "audio object is missing from the bucket")
    etag = f'"{info.etag}"'
    headers["ETag"] = etag
    if if_range is not None and if_range.strip() != etag:
        range_header = None  # the client's copy is stale: send the whole current representation
    try:
        ranges = parse_range(range_header, info.size)
    except RangeNotSatisfiable:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{info.size}"})
    head = request.method == "HEAD"
    if ranges is None:
        headers["Content-Length"] = str(info.size)
        if head:
            return Response(status_code=200, headers=headers, media_type=content_type)
        return StreamingResponse(_body(store, key, 0, info.size), headers=headers, media_type=content_type)
    if len(ranges) == 1:
        r = ranges[0]
        headers |= {"Content-Range": r.content_range(info.size), "Content-Length": str(r.length)}
        if head:
            return Response(status_code=206, headers=headers, media_type=content_type)
        return StreamingResponse(
            _body(store, key, r.start, r.length), status_code=206, headers=headers, media_type=content_type
        )
    boundary = secrets.token_hex(12)
    body, length = _multipart(store, key, ranges, info.size, content_type, boundary)
    headers["Content-Length"] = str(length)
    media = f"multipart/byteranges; boundary={boundary}"
    if head:
        return Response(status_code=206, headers=headers, media_type=media)
    return StreamingResponse(body, status_code=206, headers=headers, media_type=media)
