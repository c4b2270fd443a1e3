"""Object store adapter over the minio SDK (works with MinIO, SeaweedFS and AWS S3)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Generator, Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from minio import Minio
from minio.commonconfig import ComposeSource, CopySource
from minio.error import S3Error

if TYPE_CHECKING:
    from music_core.settings import Settings

COPY_OBJECT_LIMIT = 5 * 1024**3  # S3 CopyObject refuses larger sources; compose copies in parts
# Files up to this size go up in one PUT (a multipart upload costs four requests); larger ones in
# parts of this size. Memory per upload is bounded by one part.
PART_SIZE = 16 * 1024**2
_MISSING = {"NoSuchKey", "NoSuchObject", "NoSuchBucket"}
# SeaweedFS, the embedded S3 server, gzips every object stored as audio/wav, audio/x-wav or
# audio/wave (its util.IsCompressableFileType): PCM barely shrinks, the upload costs twice the CPU
# and every read, ranges included, is decompressed (5x the CPU of a plain GET). WAVE objects carry
# the registered type of RFC 2361 instead, which it stores as is. The API's responses take their
# type from the database, not from the object.
WAVE_STORED_TYPE = "audio/vnd.wave"
_STORED_TYPES = dict.fromkeys(("audio/wav", "audio/x-wav", "audio/wave", "audio/x-pn-wav"), WAVE_STORED_TYPE)


def stored_content_type(content_type: str) -> str:
    """The Content-Type an object is stored with (see WAVE_STORED_TYPE)."""
    return _STORED_TYPES.get(content_type.lower(), content_type)


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str
    last_modified: dt.datetime | None
    content_type: str | None = None
    metadata: Mapping[str, str] | None = None


class ObjectStore:
    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        *,
        bucket: str,
        secure: bool = False,
        region: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.client = Minio(
            endpoint, access_key=access_key, secret_key=secret_key, secure=secure, region=region
        )

    def ensure_bucket(self) -> None:
        if not self.client.bucket_exists(self.bucket):
            try:
                self.client.make_bucket(self.bucket)
            except S3Error as exc:  # another process created it first
                if exc.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                    raise

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        for obj in self.client.list_objects(self.bucket, prefix=prefix, recursive=True):
            if obj.is_dir or obj.object_name is None:
                continue
            yield ObjectInfo(obj.object_name, obj.size or 0, (obj.etag or "").strip('"'), obj.last_modified)

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            st = self.client.stat_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in _MISSING:
                return None
            raise
        meta = {k.lower().removeprefix("x-amz-meta-"): v for k, v in (st.metadata or {}).items()}
        return ObjectInfo(
            key, st.size or 0, (st.etag or "").strip('"'), st.last_modified, st.content_type, meta
        )

    def iter_chunks(
        self, key: str, chunk_size: int = 1024 * 1024, offset: int = 0, length: int = 0
    ) -> Iterator[bytes]:
        """Stream an object (or ``length`` bytes from ``offset``) in bounded chunks: constant memory."""
        response = self.client.get_object(self.bucket, key, offset=offset, length=length)
        try:
            yield from response.stream(chunk_size)
        finally:
            response.close()
            response.release_conn()

    def open_stream(
        self, key: str, chunk_size: int = 1024 * 1024, offset: int = 0, length: int = 0
    ) -> tuple[ObjectInfo, Generator[bytes, None, None]] | None:
        """One GET for an object (or ``length`` bytes from ``offset``): its size and etag from the response
        headers, and its bytes in bounded chunks. None when the object is missing. The iterator is already
        started, so closing it or merely dropping it releases the connection."""
        try:
            response = self.client.get_object(self.bucket, key, offset=offset, length=length)
        except S3Error as exc:
            if exc.code in _MISSING:
                return None
            raise
        try:
            headers = response.headers
            content_range = headers.get("Content-Range")  # "bytes first-last/total" for a range
            total = content_range.rsplit("/", 1)[1] if content_range else headers.get("Content-Length")
            info = ObjectInfo(key, int(total or 0), (headers.get("ETag") or "").strip('"'), None,
                              headers.get("Content-Type"))  # fmt: skip
            chunks = _released_after(response, chunk_size)
            next(chunks)  # into the try block: from here on its finally releases the connection
        except BaseException:
            response.close()
            response.release_conn()
            raise
        return info, chunks

    def download(self, key: str, path: Path) -> bool:
        """Write an object to ``path`` in bounded chunks. False when the object is missing."""
        opened = self.open_stream(key)
        if opened is None:
            return False
        _, chunks = opened
        with closing(chunks), path.open("wb") as out:
            for chunk in chunks:
                out.write(chunk)
        return True

    def presigned_get(
        self,
        key: str,
        expires: dt.timedelta = dt.timedelta(hours=2),
        response_headers: Mapping[str, str] | None = None,
    ) -> str:
        """A GET URL; ``response_headers`` (e.g. response-content-disposition) are signed into it."""
        return self.client.presigned_get_object(
            self.bucket, key, expires=expires, response_headers=dict(response_headers or {}) or None
        )

    def put_file(
        self, key: str, path: Path, content_type: str, metadata: Mapping[str, str] | None = None
    ) -> None:
        self.client.fput_object(
            self.bucket,
            key,
            str(path),
            content_type=stored_content_type(content_type),
            metadata=metadata,
            part_size=PART_SIZE,
        )

    def put_stream(
        self,
        key: str,
        stream: BinaryIO,
        size: int,
        content_type: str,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        self.client.put_object(
            self.bucket,
            key,
            stream,
            size,
            content_type=stored_content_type(content_type),
            metadata=metadata,
            part_size=PART_SIZE,
        )

    def copy(self, source_key: str, dest_key: str, size: int, match_etag: str | None = None) -> None:
        """Server-side copy; with ``match_etag`` only if the source is still that version."""
        if size <= COPY_OBJECT_LIMIT:
            self.client.copy_object(
                self.bucket, dest_key, CopySource(self.bucket, source_key, match_etag=match_etag)
            )
        else:
            self.client.compose_object(
                self.bucket, dest_key, [ComposeSource(self.bucket, source_key, match_etag=match_etag)]
            )

    def delete(self, key: str) -> None:
        self.client.remove_object(self.bucket, key)


def _released_after(response: Any, chunk_size: int) -> Generator[bytes, None, None]:
    try:
        yield b""  # primed by ObjectStore.open_stream
        yield from response.stream(chunk_size)
    finally:
        response.close()
        response.release_conn()


def object_store(settings: Settings) -> ObjectStore:
    """The store the settings describe (the API and the search service; Dagster has its resource)."""
    return ObjectStore(
        settings.s3_endpoint,  # type: ignore[arg-type]
        settings.s3_access_key or "",
        settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else "",
        bucket=settings.bucket,
        secure=settings.s3_secure,
        region=settings.s3_region,
    )
