"""Admin configuration: the web lyrics providers' API keys, stored encrypted in api_config.

Keys are write-only here: responses carry where a key comes from and a mask (last four characters of
long keys), never the key itself; request bodies are never logged.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field, SecretStr

from music_api.auth import require_admin
from music_api.deps import Conn
from music_core.provider_keys import MAX_KEY_CHARS, ProviderKeyError, delete_key, list_masked, set_key

router = APIRouter(prefix="/config", tags=["config"], dependencies=[Depends(require_admin)])


class Provider(StrEnum):
    genius = "genius"
    brave = "brave"
    tavily = "tavily"


class ProviderKeyBody(BaseModel):
    key: Annotated[SecretStr, Field(min_length=1, max_length=MAX_KEY_CHARS)]


@router.get("/provider-keys", summary="Where each lyrics provider's key comes from (masked)")
def provider_keys(request: Request, conn: Conn) -> list[dict[str, Any]]:
    return list_masked(request.app.state.settings, conn)


@router.put("/provider-keys/{provider}", summary="Store a provider key, encrypted at rest")
def put_provider_key(
    request: Request, conn: Conn, provider: Provider, body: ProviderKeyBody
) -> list[dict[str, Any]]:
    settings = request.app.state.settings
    try:
        set_key(conn, provider.value, body.key, settings.secret_key)
    except ProviderKeyError as exc:
        raise HTTPException(409, str(exc)) from None
    return list_masked(settings, conn)


@router.delete("/provider-keys/{provider}", status_code=204, summary="Forget a stored provider key")
def delete_provider_key(conn: Conn, provider: Provider) -> Response:
    if not delete_key(conn, provider.value):
        raise HTTPException(404, "no stored key for this provider")
    return Response(status_code=204)
