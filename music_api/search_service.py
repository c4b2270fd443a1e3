"""The search service: one process that holds the query encoder and the FAISS index for every API worker
on the host, served over a Unix socket (``python -m music_api.search_service --socket PATH``).

Without it, each uvicorn worker loads its own encoder (~60 MB) and its own copy of the index (about
1.6 KB per vector: 1.6 GB per worker at a million transcript chunks, twice that while a new version
loads). With it, an API worker carries neither, nor ONNX Runtime, FAISS or numpy. The service runs one
embedding pass per core at once; queries that queue behind them share the next pass. The socket is
0600 in a directory no other user can write to. The wire format is ``music_api.search_protocol``."""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import signal
import socket
import socketserver
import stat
import sys
import threading
from pathlib import Path
from typing import Any

from music_api.search_protocol import MAX_REQUEST_BYTES, ProtocolError, pack_lookup, recv_frame, send_frame
from music_api.semantic import SemanticIndex
from music_core.private_dir import private_directory
from music_core.settings import Settings
from music_core.storage import object_store

log = logging.getLogger(__name__)
MAX_QUERY_CHARS = 2000
MAX_K = 10_000


def answer(engine: SemanticIndex, request: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """One request's answer frame; bad requests get ``{"ok": false, "error": ...}``, never an exception."""
    op = request.get("op", "lookup")
    if op == "health":
        return {"ok": True, "model_id": engine.model_id, "model_loaded": engine.loaded,
                "ready": engine.ready, "version": engine.version}, b""  # fmt: skip
    if op != "lookup":
        return {"ok": False, "error": f"unknown op {op!r}"}, b""
    text, k = request.get("text"), request.get("k")
    if not isinstance(text, str) or not 1 <= len(text) <= MAX_QUERY_CHARS:
        return {"ok": False, "error": f"text must be a string of 1 to {MAX_QUERY_CHARS} characters"}, b""
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        return {"ok": False, "error": f"k must be an integer from 1 to {MAX_K}"}, b""
    if engine.loading:  # a first start may export the model for a minute: say so now, not then
        return {"ok": False, "error": "the search service is loading its model; try again shortly"}, b""
    found = engine.lookup(text, k)
    vector = found.vector.astype("<f4").tobytes()
    header = {"ok": True, "model_id": engine.model_id, "version": engine.version, "dim": len(found.vector),
              "hits": None if found.hits is None else len(found.hits)}  # fmt: skip
    return header, pack_lookup(vector, found.hits)


class _Connection(socketserver.BaseRequestHandler):
    """One API worker connection: frames in, frames out, until it closes. Each connection has its own
    thread, so concurrent lookups queue in the engine's micro-batcher and share embedding passes."""

    def handle(self) -> None:
        engine: SemanticIndex = self.server.engine  # type: ignore[attr-defined]
        while True:
            try:
                frame = recv_frame(self.request, MAX_REQUEST_BYTES)
            except ProtocolError as exc:  # say why, then drop the connection: its framing is lost
                self._send({"ok": False, "error": f"bad frame: {exc}"})
                return
            except OSError:
                return
            if frame is None:
                return
            try:
                reply = answer(engine, frame[0])
            except Exception as exc:  # noqa: BLE001 - the model or the index failed: tell the caller
                log.exception("lookup failed")
                reply = {"ok": False, "error": f"lookup failed: {type(exc).__name__}: {exc}"}, b""
            if not self._send(*reply):
                return

    def _send(self, header: dict[str, Any], payload: bytes = b"") -> bool:
        try:
            send_frame(self.request, header, payload)
        except OSError:
            return False
        return True


class SearchServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    request_queue_size = socket.SOMAXCONN  # every API thread may reconnect at once after a restart

    def __init__(self, path: Path, engine: SemanticIndex) -> None:
        self.path = path
        self.engine = engine
        self._bound = False
        private_directory(path.parent, "the socket")
        self._lock_fd = _hold_service_lock(path)
        try:
            _remove_stale_socket(path)
            super().__init__(str(path), _Connection)
        except BaseException:
            os.close(self._lock_fd)
            raise

    def server_bind(self) -> None:
        old = os.umask(0o177)  # the socket is 0600 from the moment it exists
        try:
            super().server_bind()
        finally:
            os.umask(old)
        self._bound = True

    def server_close(self) -> None:
        super().server_close()  # also called by socketserver when binding failed: then nothing is ours
        if self._bound:
            self._bound = False
            self.path.unlink(missing_ok=True)
            os.close(self._lock_fd)


def _remove_stale_socket(path: Path) -> None:
    """A socket (or a link) left by a service that stopped without cleaning up: ours to remove, since
    we hold the lock. Anything else at that path is not touched."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not (stat.S_ISSOCK(mode) or stat.S_ISLNK(mode)):
        raise RuntimeError(f"{path} exists and is not a socket; choose another path")
    path.unlink()


def _hold_service_lock(path: Path) -> int:
    """An exclusive lock on ``<socket>.lock`` for the service's lifetime: a second service on the same
    socket refuses to start instead of replacing the first one's socket."""
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RuntimeError(f"another search service is running on {path}") from None
    return fd


def build_engine(settings: Settings, threads: int = 1, passes: int = 1) -> SemanticIndex:
    if not settings.s3_endpoint:
        raise RuntimeError("the search service needs MUSIC_S3_ENDPOINT (music-analyzer up sets it)")
    return SemanticIndex(
        object_store(settings), settings.embedding_model, encoder_cache=settings.query_encoder_cache,
        threads=threads, passes=passes,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m music_api.search_service", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--socket", type=Path, help="Unix socket to listen on (default: MUSIC_SEARCH_SOCKET)")
    parser.add_argument("--threads", type=int, default=1, help="encoder threads per embedding pass")
    parser.add_argument("--passes", type=int, default=len(os.sched_getaffinity(0)),
                        help="embedding passes at once (default: one per core, as one API worker per core had)")  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    settings = Settings()
    path = args.socket or settings.search_socket
    if path is None:
        print("no socket: pass --socket or set MUSIC_SEARCH_SOCKET", file=sys.stderr)
        return 2
    try:
        server = SearchServer(
            path.expanduser().absolute(), build_engine(settings, max(1, args.threads), max(1, args.passes))
        )
    except (RuntimeError, OSError) as exc:
        print(f"search service: {exc}", file=sys.stderr)
        return 1
    engine = server.engine
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    threading.Thread(target=engine.warm_up_quietly, daemon=True, name="warm-up").start()  # before serving
    threading.Thread(target=server.serve_forever, daemon=True, name="serve").start()
    while not stop.wait(1.0):
        pass
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
