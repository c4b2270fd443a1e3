"""Presigned PUT URLs so the web page uploads straight into the bucket's inbox (admins only).

The API writes nothing itself: it signs. Keys are made safe by music_core.naming; the pipeline's
inbox sensor registers what arrives, as for any other upload."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from music_api.auth import require_admin
from music_api.deps import Conn, Store
from music_core.naming import inbox_key

router = APIRouter(prefix="/uploads", tags=["upload"], dependencies=[Depends(require_admin)])
EXPIRY = dt.timedelta(minutes=30)


class UploadFile(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=1000, description="file name, may hold folders")]
    size: Annotated[int, Field(ge=0)]


class PresignRequest(BaseModel):
    files: list[UploadFile] = Field(min_length=1, max_length=1000)


class PresignedUpload(BaseModel):
    name: str
    key: str | None
    url: str | None
    error: str | None = None


class PresignResponse(BaseModel):
    expires_in: int
    items: list[PresignedUpload]


@router.post("/presign", response_model=PresignResponse, summary="Presigned PUT URLs into the inbox")
def presign(request: Request, body: PresignRequest, store: Store) -> PresignResponse:
    settings = request.app.state.settings
    items = []
    for f in body.files:
        if f.size > settings.max_file_bytes:
            items.append(PresignedUpload(name=f.name, key=None, url=None,
                                         error=f"larger than the limit of {settings.max_file_bytes} bytes"))  # fmt: skip
            continue
        key = inbox_key(settings.inbox_prefix, f.name)
        url = store.client.presigned_put_object(store.bucket, key, expires=EXPIRY)
        items.append(PresignedUpload(name=f.name, key=key, url=url))
    return PresignResponse(expires_in=int(EXPIRY.total_seconds()), items=items)


class UploadStatus(BaseModel):
    key: str
    state: str  # waiting (still in the inbox) | registered | unknown
    track_id: str | None = None
    duplicate_of: str | None = None  # the first name of this content when the upload was another copy


@router.get("/status", response_model=list[UploadStatus], summary="What became of uploaded inbox objects")
def upload_status(
    request: Request,
    conn: Conn,
    store: Store,
    key: Annotated[list[str], Query(min_length=1, max_length=200)],
) -> list[UploadStatus]:
    prefix = request.app.state.settings.inbox_prefix
    rows = conn.execute(
        "SELECT DISTINCT ON (a.object_key) a.object_key, a.file_id, a.original_name, f.original_filename"
        " FROM file_aliases a JOIN music_files f ON f.id = a.file_id WHERE a.object_key = ANY(%s)"
        " ORDER BY a.object_key, a.last_seen_at DESC",
        (key,),
    ).fetchall()
    registered = {r[0]: r[1:] for r in rows}
    out = []
    for k in dict.fromkeys(key):
        if k in registered:
            track_id, name, first = registered[k]
            out.append(UploadStatus(key=k, state="registered", track_id=track_id,
                                    duplicate_of=None if first == name else first))  # fmt: skip
        elif k.startswith(prefix) and store.stat(k) is not None:
            out.append(UploadStatus(key=k, state="waiting"))
        else:
            out.append(UploadStatus(key=k, state="unknown"))
    return out
