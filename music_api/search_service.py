"""The search service: one process that holds the query encoder and the FAISS index for every API worker
on the host, served over a Unix socket (``python -m music_api.search_service --socket PATH``).

Without it, each uvicorn worker loads its own encoder (~60 MB) and its own copy of the index (about
1.6 KB per vector: 1.6 GB per worker at a million transcript chunks, twice that while a new version
loads). With it, an API worker carries neither, nor ONNX Runtime, FAISS or numpy, and concurrent queries
from all workers share one embedding pass. The socket's directory is made private (0700): only the
service's own user can query it."""

from __future__ import annotations

import argparse
import base64
import os
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from pydantic import BaseModel, Field

from music_api.deps import object_store
from music_api.semantic import SemanticIndex
from music_core.settings import Settings

MAX_QUERY_CHARS = 2000
MAX_K = 10_000


class LookupRequest(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    k: int = Field(ge=1, le=MAX_K)


class LookupResponse(BaseModel):
    model_id: str
    version: int | None = Field(description="The FAISS index version searched; None: no index yet.")
    vector: str = Field(description="The query's unit vector: float32 little-endian, base64.")
    hits: list[tuple[int, float]] | None = Field(description="(embedding id, cosine); None without index.")


class ServiceHealth(BaseModel):
    model_id: str
    model_loaded: bool
    version: int | None


def create_search_app(settings: Settings | None = None, *, threads: int = 1, warm_up: bool = True) -> FastAPI:
    settings = settings or Settings()
    if not settings.s3_endpoint:
        raise RuntimeError("the search service needs MUSIC_S3_ENDPOINT (music-analyzer up sets it)")
    engine = SemanticIndex(
        object_store(settings),
        settings.embedding_model,
        encoder_cache=settings.query_encoder_cache,
        threads=threads,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if warm_up:  # the first query should not wait for the model and the index
            threading.Thread(target=engine.warm_up_quietly, daemon=True, name="warm-up").start()
        yield

    app = FastAPI(title="Music Analyzer search service", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.engine = engine

    @app.post("/lookup", response_model=LookupResponse)
    def lookup(request: LookupRequest) -> LookupResponse:
        # A plain def: FastAPI runs it in its thread pool, so concurrent lookups (from every API worker)
        # queue in the engine's micro-batcher and share one embedding pass.
        found = engine.lookup(request.text, request.k)
        return LookupResponse(
            model_id=engine.model_id,
            version=engine.version,
            vector=base64.b64encode(found.vector.astype("<f4").tobytes()).decode("ascii"),
            hits=found.hits,
        )

    @app.get("/health", response_model=ServiceHealth)
    def health() -> ServiceHealth:
        return ServiceHealth(model_id=engine.model_id, model_loaded=engine.loaded, version=engine.version)

    return app


def prepare_socket_directory(socket: Path) -> None:
    """The socket's directory exists and only its owner may enter it (uvicorn makes the socket 0666)."""
    socket.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(socket.parent, 0o700)


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(prog="music-analyzer search-service", description=__doc__.split("\n")[0])
    parser.add_argument("--socket", type=Path, help="Unix socket to listen on (default: MUSIC_SEARCH_SOCKET)")
    parser.add_argument("--threads", type=int, default=1, help="encoder threads per embedding pass")
    args = parser.parse_args(argv)
    settings = Settings()
    socket = args.socket or settings.search_socket
    if socket is None:
        print("no socket: pass --socket or set MUSIC_SEARCH_SOCKET", file=sys.stderr)
        return 2
    socket = socket.expanduser().resolve()
    prepare_socket_directory(socket)
    app = create_search_app(settings, threads=max(1, args.threads))
    uvicorn.run(app, uds=str(socket), log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
