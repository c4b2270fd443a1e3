"""Presigned PUT URLs so the web page uploads straight into the bucket's inbox (admins only).

The API writes nothing itself: it signs. Keys are made safe by music_core.naming; the pipeline's
inbox sensor registers what arrives, as for any other upload."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from music_api.auth import require_admin
from music_api.deps import Store
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
