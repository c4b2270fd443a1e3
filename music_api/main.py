"""FastAPI app factory: ``uvicorn music_api.main:create_app --factory``. Read-only over the outputs."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis
from fastapi import Depends, FastAPI, Response
from fastapi.middleware.cors import CORSMiddleware
from psycopg_pool import ConnectionPool

from music_api import observability
from music_api.audio_cache import AudioCache
from music_api.auth import CredentialStore, require_admin
from music_api.cache import ResponseCache
from music_api.generation_cache import GenerationCache
from music_api.ratelimit import RateLimiter
from music_api.routes import config, docs, export, health, search, storage, stream, tracks, uploads, web
from music_api.search_client import RemoteSemanticIndex
from music_api.signed_urls import UrlSigner, signing_key
from music_api.term_stats import SearchStatisticsCache
from music_core.private_dir import NotPrivate
from music_core.settings import Settings
from music_core.storage import ObjectStore, object_store

log = logging.getLogger(__name__)


def semantic_engine(settings: Settings, store: ObjectStore):  # noqa: ANN201 - SemanticIndex or remote
    """The search service's client when one is configured, else this worker's own encoder and index
    (imported only then: numpy, FAISS and ONNX Runtime stay out of workers that use the service)."""
    if settings.search_socket is not None:
        return RemoteSemanticIndex(settings.search_socket.expanduser())
    from music_api.semantic import SemanticIndex

    return SemanticIndex(store, settings.embedding_model, encoder_cache=settings.query_encoder_cache)


def audio_cache(settings: Settings) -> AudioCache | None:
    """The local copies of streamed audio; None (every range from the bucket) when turned off or when
    the directory cannot be made."""
    if not settings.stream_cache_bytes:
        return None
    try:
        return AudioCache(settings.audio_cache_dir, settings.stream_cache_bytes)
    except (OSError, NotPrivate) as exc:
        log.warning("audio copies off: %s", exc)
        return None


def create_app(settings: Settings | None = None, *, warm_up: bool = True) -> FastAPI:
    settings = settings or Settings()
    missing = [
        name
        for name, value in (
            ("MUSIC_DATABASE_URL", settings.database_url),
            ("MUSIC_S3_ENDPOINT", settings.s3_endpoint),
            ("MUSIC_REDIS_URL", settings.redis_url),
        )
        if not value
    ]
    if not (settings.api_token or settings.api_keys or settings.api_users):
        missing.append("MUSIC_API_TOKEN (or MUSIC_API_KEYS / MUSIC_API_USERS)")
    if missing:
        raise RuntimeError("the API needs " + ", ".join(missing) + " (music-analyzer up sets them)")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = ConnectionPool(
            settings.database_url, min_size=1, max_size=10, open=False, kwargs={"connect_timeout": 5}
        )
        pool.open(wait=False)
        app.state.pool = pool
        app.state.redis = redis.Redis.from_url(
            settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5
        )
        app.state.audio_cache = audio_cache(settings)
        if warm_up:  # the first semantic query should not pay for loading torch and the model
            threading.Thread(target=app.state.semantic.warm_up_quietly, daemon=True, name="warm-up").start()
        try:
            yield
        finally:
            pool.close()
            if app.state.audio_cache is not None:
                app.state.audio_cache.close()
            app.state.redis.close()
            await app.state.rate_limiter.aclose()
            app.state.cache.close()
            if isinstance(app.state.semantic, RemoteSemanticIndex):
                app.state.semantic.close()

    app = FastAPI(
        title="Music Analyzer API", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.state.settings = settings
    app.state.credentials = CredentialStore(settings)
    app.state.url_signer = UrlSigner(signing_key(settings))
    app.state.cache = ResponseCache(settings.redis_url)  # type: ignore[arg-type]
    app.state.rate_limiter = RateLimiter(settings.redis_url, settings.rate_limit_per_minute)  # type: ignore[arg-type]
    app.state.store = object_store(settings)
    app.state.semantic = semantic_engine(settings, app.state.store)
    app.state.search_stats = SearchStatisticsCache()
    app.state.audio_rows = GenerationCache()
    observability.install(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "HEAD"],
            allow_headers=["Authorization", "Range", "If-Range"], expose_headers=["Content-Range", "Accept-Ranges"],
        )  # fmt: skip

    @app.get("/metrics", include_in_schema=False, dependencies=[Depends(require_admin)])
    def metrics() -> Response:
        return app.state.metrics.exposition()

    app.include_router(health.router)
    app.include_router(tracks.router)
    app.include_router(stream.router)
    app.include_router(search.router)
    app.include_router(export.router)
    app.include_router(storage.router)
    app.include_router(uploads.router)
    app.include_router(config.router)
    app.include_router(web.router)
    app.include_router(docs.router)
    return app
