"""Audio streaming straight from the object store, with HTTP Range (RFC 9110): 206, multipart
byteranges, 416, If-Range and HEAD. Only the requested bytes are fetched, in bounded chunks; objects
streamed before are read from the API's local copy (audio_cache.py). With MUSIC_STREAM_REDIRECT the API
answers with a 307 to a short-lived presigned URL instead."""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, BinaryIO
from urllib.parse import quote

import anyio
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from minio.error import S3Error
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from music_api.audio_cache import AudioCache, AudioCopy
from music_api.auth import require_reader
from music_api.deps import Store, fetch_one
from music_api.generation_cache import GenerationCache
from music_api.routes.tracks import TrackId
from music_core.http_range import ByteRange, RangeNotSatisfiable, parse_range
from music_core.storage import ObjectInfo, ObjectStore

router = APIRouter(tags=["streaming"], dependencies=[Depends(require_reader)])
CHUNK = 1024 * 1024
Body = Callable[[int, int], AsyncIterator[bytes]]  # (first byte, length) -> the bytes


class Version(StrEnum):
    original = "original"
    converted = "converted"


def content_disposition(filename: str, disposition: str = "inline") -> str:
    """Safe for any name: an ASCII fallback plus RFC 5987 UTF-8, no quotes or CR/LF can break out."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;' else "_" for c in filename) or "audio"
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _store_body(store: ObjectStore, key: str) -> Body:
    def body(start: int, length: int) -> AsyncIterator[bytes]:
        return iterate_in_threadpool(store.iter_chunks(key, CHUNK, offset=start, length=length))

    return body


def _copy_body(file: BinaryIO) -> Body:
    """Reads of the local copy, each in a worker thread (a cold page-cache read must not stall the loop).
    The file stays open for the response even if the cache evicts the copy meanwhile."""

    async def body(start: int, length: int) -> AsyncIterator[bytes]:
        end = start + length
        while start < end:
            chunk = await anyio.to_thread.run_sync(os.pread, file.fileno(), min(CHUNK, end - start), start)
            if not chunk:
                raise OSError("the cached copy is shorter than its recorded size")
            yield chunk
            start += len(chunk)

    return body


def _multipart(
    body: Body, ranges: list[ByteRange], size: int, content_type: str
) -> tuple[AsyncIterator[bytes], int, str]:
    boundary = secrets.token_hex(12)
    heads = [
        f"\r\n--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: {r.content_range(size)}\r\n\r\n".encode()
        for r in ranges
    ]
    tail = f"\r\n--{boundary}--\r\n".encode()
    length = sum(len(h) + r.length for h, r in zip(heads, ranges, strict=True)) + len(tail)

    async def parts() -> AsyncIterator[bytes]:
        for head, r in zip(heads, ranges, strict=True):
            yield head
            async for chunk in body(r.start, r.length):
                yield chunk
        yield tail

    return parts(), length, f"multipart/byteranges; boundary={boundary}"


@dataclass(frozen=True)
class AudioRequest:
    """What the client asked for, and the response headers every answer carries."""

    head: bool
    range_header: str | None
    if_range: str | None
    headers: dict[str, str]
    content_type: str

    def plan(self, size: int, etag: str) -> Answer:
        """Status, headers and byte ranges of the answer for a representation of ``size`` bytes."""
        headers = {**self.headers, "ETag": f'"{etag}"'}
        range_header = self.range_header
        if self.if_range is not None and self.if_range.strip() != headers["ETag"]:
            range_header = None  # the client's copy is stale: send the whole current representation
        try:
            ranges = parse_range(range_header, size)
        except RangeNotSatisfiable:
            return Answer(416, {**headers, "Content-Range": f"bytes */{size}"}, self.content_type, [])
        if ranges is None:
            headers["Content-Length"] = str(size)
            spans = [ByteRange(0, size - 1)] if size else []
            return Answer(200, headers, self.content_type, spans)
        if len(ranges) == 1:
            r = ranges[0]
            headers |= {"Content-Range": r.content_range(size), "Content-Length": str(r.length)}
        return Answer(206, headers, self.content_type, ranges)

    def respond(self, size: int, etag: str, body: Body) -> Response:
        """200, 206 (one range or multipart) or 416, the bytes streamed from ``body``."""
        return self.answer_with(self.plan(size, etag), size, body)

    def answer_with(self, answer: Answer, size: int, body: Body) -> Response:
        """The response for a planned answer, its bytes streamed from ``body``."""
        if answer.status == 416:
            return Response(status_code=416, headers=answer.headers)
        media, headers = answer.media, answer.headers
        if len(answer.ranges) > 1:
            chunks, length, media = _multipart(body, answer.ranges, size, self.content_type)
            headers["Content-Length"] = str(length)
        elif answer.ranges:
            chunks = body(answer.ranges[0].start, answer.ranges[0].length)
        else:
            chunks = _nothing()
        if self.head:
            return Response(status_code=answer.status, headers=headers, media_type=media)
        return StreamingResponse(chunks, status_code=answer.status, headers=headers, media_type=media)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    media: str
    ranges: list[ByteRange]

    def one_small_range(self) -> ByteRange | None:
        """The bytes of a 200/206 that fit in one read, else None (multipart, large, empty, 416)."""
        if self.status != 416 and len(self.ranges) == 1 and self.ranges[0].length <= CHUNK:
            return self.ranges[0]
        return None


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""  # an empty async generator


def _one_request(store: ObjectStore, key: str, size: int, wanted: AudioRequest) -> Response | None:
    """The common GET (whole object or one range, no If-Range) with a single object-store request: the
    range is resolved against the recorded size, and the object's own size and etag come back with its
    bytes. None when the general path must decide (several ranges, 416, a size that differs)."""
    try:
        ranges = parse_range(wanted.range_header, size)
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
    headers = {**wanted.headers, "ETag": f'"{info.etag}"'}
    if r is None:
        headers["Content-Length"] = str(size)
        return StreamingResponse(chunks, headers=headers, media_type=wanted.content_type)
    headers |= {"Content-Range": r.content_range(size), "Content-Length": str(r.length)}
    return StreamingResponse(chunks, status_code=206, headers=headers, media_type=wanted.content_type)


def _redirect(store: ObjectStore, key: str, seconds: int, wanted: AudioRequest) -> Response:
    """307 to a presigned URL for this object (ranges and seeking then go to the object store)."""
    if store.stat(key) is None:
        raise HTTPException(404, "audio object is missing from the bucket")
    url = store.presigned_get(
        key,
        dt.timedelta(seconds=seconds),
        {
            "response-content-type": wanted.content_type,
            "response-content-disposition": wanted.headers["Content-Disposition"],
        },
    )
    return RedirectResponse(url, status_code=307, headers={"Cache-Control": "private, no-store"})


async def _from_copy(copy: AudioCopy, wanted: AudioRequest) -> Response | None:
    """The answer from the local copy; None when the copy cannot be used (evicted since it was checked,
    not the size it should be, unreadable): the bucket answers instead. One small range (a seek) is
    read at once and sent as one body."""
    try:
        fd = os.open(copy.path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    file = os.fdopen(fd, "rb", buffering=0)  # open for the response even if the copy is evicted meanwhile
    try:
        if os.fstat(fd).st_size != copy.size:
            file.close()
            return None
        answer = wanted.plan(copy.size, copy.etag)
        small = None if wanted.head else answer.one_small_range()
        if small is not None:
            with file:
                data = await anyio.to_thread.run_sync(os.pread, fd, small.length, small.start)
            if len(data) != small.length:
                return None
            return Response(data, status_code=answer.status, headers=answer.headers, media_type=answer.media)
    except OSError:
        file.close()
        return None
    response = wanted.answer_with(answer, copy.size, _copy_body(file))
    if wanted.head or answer.status == 416:
        file.close()
    else:  # closed when the body ends, fails or is abandoned (or, never started, when it is dropped)
        response.body_iterator = _closing(response.body_iterator, file)  # type: ignore[attr-defined]
    return response


async def _closing(chunks: AsyncIterator[bytes], file: BinaryIO) -> AsyncIterator[bytes]:
    try:
        async for chunk in chunks:
            yield chunk
    finally:
        file.close()


def _from_store(store: ObjectStore, key: str, recorded_size: int | None, wanted: AudioRequest) -> Response:
    """Without local copies; runs in a worker thread (every call here talks to the object store)."""
    if not wanted.head and wanted.if_range is None and recorded_size is not None:
        fast = _one_request(store, key, recorded_size, wanted)
        if fast is not None:
            return fast
    info = _stat(store, key)
    return wanted.respond(info.size, info.etag, _store_body(store, key))


def _stat(store: ObjectStore, key: str) -> ObjectInfo:
    info = store.stat(key)
    if info is None:
        raise HTTPException(404, "audio object is missing from the bucket")
    return info


def _stat_and_copy(store: ObjectStore, cache: AudioCache, key: str) -> tuple[ObjectInfo, AudioCopy | None]:
    info = _stat(store, key)
    return info, cache.revalidate(key, info.size, info.etag)


async def _with_copies(store: ObjectStore, cache: AudioCache, key: str, wanted: AudioRequest) -> Response:
    """From the local copy when there is one for the current version of the object (checked against
    the bucket at most once per revalidation period); else from the bucket, and a copy is made."""
    info = None
    copy = cache.fresh(key)
    if copy is None:
        info, copy = await run_in_threadpool(_stat_and_copy, store, cache, key)
    if copy is not None:
        response = await _from_copy(copy, wanted)
        if response is not None:
            return response
        cache.forget(key)
    if info is None:
        info = await run_in_threadpool(_stat, store, key)
    if not wanted.head:
        cache.schedule_fill(store, key, info.size, info.etag)
    return wanted.respond(info.size, info.etag, _store_body(store, key))


TRACK_AUDIO = (
    "SELECT storage_path, converted_path, content_type, original_filename, file_size, converted_size"
    " FROM music_files WHERE id = %s"
)


async def _audio_row(request: Request, track_id: str) -> tuple | None:
    """The track's audio columns; a seek repeats the lookup, so found rows are kept until the pipeline
    next writes (generation_cache.py)."""
    generation = getattr(request.state, "generation", None)
    rows: GenerationCache[tuple] = request.app.state.audio_rows
    row = rows.get(generation, track_id)
    if row is None:
        row = await fetch_one(request, TRACK_AUDIO, (track_id,))
        if row is not None:
            rows.put(generation, track_id, row)
    return row


@router.head("/tracks/{track_id}/audio", summary="Headers of the audio stream", operation_id="head_audio")
@router.get("/tracks/{track_id}/audio", summary="Stream audio (seekable)", operation_id="stream_audio")
async def stream_audio(
    request: Request,
    store: Store,
    track_id: TrackId,
    version: Annotated[Version, Query()] = Version.original,
) -> Response:
    row = await _audio_row(request, track_id)
    if row is None:
        raise HTTPException(404, "no such track")
    key = row[0] if version is Version.original else row[1]
    if key is None:
        raise HTTPException(404, "this track has no converted audio yet")
    name = row[3].rsplit("/", 1)[-1]
    if version is Version.converted:
        name = name.rsplit(".", 1)[0] + ".16k.flac"
    wanted = AudioRequest(
        head=request.method == "HEAD",
        range_header=request.headers.get("range"),
        if_range=request.headers.get("if-range"),
        headers={"Accept-Ranges": "bytes", "Content-Disposition": content_disposition(name)},
        content_type="audio/flac" if version is Version.converted else (row[2] or "application/octet-stream"),
    )
    settings = request.app.state.settings
    if settings.stream_redirect:
        return await run_in_threadpool(_redirect, store, key, settings.stream_redirect_seconds, wanted)
    cache: AudioCache | None = request.app.state.audio_cache
    recorded_size = row[4] if version is Version.original else row[5]
    if cache is not None and recorded_size is not None and cache.eligible(recorded_size):
        return await _with_copies(store, cache, key, wanted)
    return await run_in_threadpool(_from_store, store, key, recorded_size, wanted)
