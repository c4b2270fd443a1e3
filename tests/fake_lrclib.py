"""A local HTTP server reproducing LRCLIB's documented API: /api/get (200 or 404 TrackNotFound),
/api/search (a JSON list), and 429 with Retry-After when asked to rate-limit."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

SONGS = [
    {
        "id": 101, "trackName": "Ask Not", "artistName": "John F. Kennedy", "albumName": "Inaugural Address",
        "duration": 11.0, "instrumental": False,
        "plainLyrics": "And so, my fellow Americans,\nask not what your country can do for you,\n"
                       "ask what you can do for your country.",
        "syncedLyrics": "[00:00.30] And so, my fellow Americans,\n[00:03.60] ask not what your country can do for you,\n"
                        "[00:07.80] ask what you can do for your country.",
    },
    {
        "id": 102, "trackName": "Ask Not (Remix)", "artistName": "Somebody Else", "albumName": "Club",
        "duration": 245.0, "instrumental": False, "plainLyrics": "ask not ask not remix remix " * 5,
        "syncedLyrics": None,
    },
    {
        "id": 103, "trackName": "Sectoid War", "artistName": "Band", "albumName": "Game", "duration": 175.0,
        "instrumental": True, "plainLyrics": None, "syncedLyrics": None,
    },
]  # fmt: skip


class State:
    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.rate_limit_next = 0  # answer this many requests with 429 first


def _handler(state: State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            url = urlparse(self.path)
            params = {k: v[0] for k, v in parse_qs(url.query).items()}
            state.requests.append((url.path, params))
            assert self.headers.get("User-Agent", "").startswith("music-analyzer/")
            if state.rate_limit_next > 0:
                state.rate_limit_next -= 1
                self._send(429, {"message": "Too many requests", "name": "TooManyRequests", "statusCode": 429},
                           {"Retry-After": "1"})  # fmt: skip
                return
            if url.path == "/api/get":
                for song in SONGS:
                    same = song["trackName"].lower() == params.get("track_name", "").lower() and (
                        song["artistName"].lower() == params.get("artist_name", "").lower()
                    )
                    close = "duration" not in params or abs(song["duration"] - float(params["duration"])) <= 2
                    if same and close:
                        self._send(200, song)
                        return
                self._send(404, {"message": "Failed to find specified track", "name": "TrackNotFound",
                                 "statusCode": 404})  # fmt: skip
            elif url.path == "/api/search":
                q = (params.get("q") or params.get("track_name") or "").lower()
                hits = [s for s in SONGS if any(w in (s["trackName"] + " " + (s["plainLyrics"] or "")).lower()
                                                for w in q.split())]  # fmt: skip
                self._send(200, hits)
            else:
                self._send(404, {"message": "not found", "name": "NotFound", "statusCode": 404})

    return Handler


@contextmanager
def fake_lrclib() -> Iterator[tuple[str, State]]:
    state = State()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
