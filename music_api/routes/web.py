"""The web page (static files, no build step) and the signed audio URLs its <audio> element uses."""

from __future__ import annotations

from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel

from music_api.auth import Principal, require_reader
from music_api.deps import Store
from music_api.routes.stream import Version, stream_audio
from music_api.routes.tracks import TrackId
from music_api.signed_urls import UrlSigner

router = APIRouter(tags=["web"])
_FILES = {"": ("index.html", "text/html; charset=utf-8"), "index.html": ("index.html", "text/html; charset=utf-8"),
          "app.js": ("app.js", "text/javascript; charset=utf-8"), "app.css": ("app.css", "text/css; charset=utf-8")}  # fmt: skip


def page_policy(s3_origin: str | None) -> str:
    """Scripts and styles from this origin only; no inline code, no plugins, no framing."""
    connect = "'self'" + (f" {s3_origin}" if s3_origin else "")
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"media-src {connect}; connect-src {connect}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def _s3_origin(request: Request) -> str | None:
    settings = request.app.state.settings
    if not settings.s3_endpoint:
        return None
    return ("https://" if settings.s3_secure else "http://") + settings.s3_endpoint


@router.get("/", include_in_schema=False)
def root() -> RedirectResponse:
    return RedirectResponse("/web/", status_code=307)


@router.get("/web/{name}", include_in_schema=False)
@router.get("/web/", include_in_schema=False)
def static(request: Request, name: str = "") -> Response:
    if name not in _FILES:
        raise HTTPException(404, "no such page file")
    filename, media = _FILES[name]
    body = resources.files("music_api").joinpath("web", filename).read_bytes()
    return Response(
        body,
        media_type=media,
        headers={"Content-Security-Policy": page_policy(_s3_origin(request)), "Cache-Control": "no-cache"},
    )


class SessionInfo(BaseModel):
    user: str
    role: str
    dagster_url: str


@router.get("/web/api/session", response_model=SessionInfo, summary="Who is logged in (for the web page)")
def session(request: Request, principal: Annotated[Principal, Depends(require_reader)]) -> SessionInfo:
    settings = request.app.state.settings
    return SessionInfo(
        user=principal.name,
        role=principal.role,
        dagster_url=f"http://{settings.dagster_host}:{settings.dagster_port}/",
    )


class AudioUrl(BaseModel):
    url: str
    expires: int


@router.get(
    "/tracks/{track_id}/audio-url",
    response_model=AudioUrl,
    summary="A short-lived signed URL for an <audio> element (no header needed)",
    dependencies=[Depends(require_reader)],
)
def audio_url(request: Request, track_id: TrackId, version: Version = Version.original) -> AudioUrl:
    signer: UrlSigner = request.app.state.url_signer
    expires, signature = signer.sign(track_id, version.value)
    url = f"/stream/{track_id}?version={version.value}&expires={expires}&signature={signature}"
    return AudioUrl(url=url, expires=expires)


@router.head(
    "/stream/{track_id}", summary="Headers of a signed audio stream", operation_id="head_signed_audio"
)
@router.get(
    "/stream/{track_id}", summary="Audio through a signed URL (seekable)", operation_id="signed_audio"
)
async def signed_audio(
    request: Request,
    store: Store,
    track_id: TrackId,
    expires: Annotated[int, Query(ge=0, le=2**40)],
    signature: Annotated[str, Query(pattern="^[0-9a-f]{64}$")],
    version: Version = Version.original,
) -> Response:
    signer: UrlSigner = request.app.state.url_signer
    if not signer.verify(track_id, version.value, expires, signature):
        raise HTTPException(403, "this audio link is invalid or has expired")
    return await stream_audio(request, store, track_id, version)
