"""The API's side of the search service (``music_api.search_service``): the same ``lookup`` as the
in-process ``SemanticIndex``, over the service's Unix socket. Imports neither numpy nor the encoder."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from music_api.search_protocol import MAX_ANSWER_BYTES, ProtocolError, recv_frame, send_frame, unpack_lookup

log = logging.getLogger(__name__)


class SemanticUnavailable(RuntimeError):
    """Semantic search cannot answer now (the search service is down or failing)."""


@dataclass(frozen=True)
class Lookup:
    vector: Any  # the query's unit vector: a numpy array in process, array('f') from the service
    hits: list[tuple[int, float]] | None  # (embedding id, cosine), best first; None: no index yet


class RemoteSemanticIndex:
    """Thread-safe: each call takes an idle connection (or opens one) and gives it back afterwards."""

    def __init__(
        self, path: Path, *, timeout: float = 15.0, health_timeout: float = 2.0, log_failures: bool = True
    ) -> None:
        # While the service loads its model it answers "loading" at once, so a lookup only waits for
        # passes: a busy service, not a starting one. /health must answer quickly whatever happens.
        self.path = path
        self.timeout = timeout
        self.health_timeout = health_timeout
        self.model_id = ""  # learnt from the service's answers
        self.version: int | None = None
        self._idle: list[socket.socket] = []
        self._lock = threading.Lock()
        self._last_warning = -60.0
        self.log_failures = log_failures

    def lookup(self, text: str, k: int) -> Lookup:
        header, payload = self._call({"op": "lookup", "text": text, "k": k}, self.timeout)
        try:
            vector, hits = unpack_lookup(header, payload)
        except ProtocolError as exc:
            raise self._unavailable(f"the search service sent a malformed answer: {exc}") from None
        return Lookup(vector, hits)

    def health(self) -> dict[str, Any]:
        return self._call({"op": "health"}, self.health_timeout)[0]

    def ready(self) -> bool:
        """The service answers and has loaded its model and looked for the index."""
        try:
            return bool(self.health().get("ready"))
        except SemanticUnavailable:
            return False

    def wait_until_loaded(self, timeout: float, alive: Callable[[], bool] = lambda: True) -> bool:
        """True once ``ready()``; False after ``timeout`` or once ``alive()`` is false (e.g. the
        service's process exited)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and alive():
            if self.ready():
                return True
            time.sleep(0.2)
        return False

    def warm_up_quietly(self) -> None:
        """The service warms itself up; this only learns its model id (and says if it is not there)."""
        try:
            self.health()
        except SemanticUnavailable:
            pass  # logged by _unavailable

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _call(self, request: dict[str, Any], timeout: float) -> tuple[dict[str, Any], bytes]:
        for attempt in range(2):
            conn, reused = self._connection()
            try:
                conn.settimeout(timeout)
                send_frame(conn, request)
                frame = recv_frame(conn, MAX_ANSWER_BYTES)
                if frame is None:
                    raise ConnectionResetError("the search service closed the connection")
            except (ConnectionError, ProtocolError) as exc:
                conn.close()
                if reused and attempt == 0:
                    # The service restarted since this connection was made: so did every idle one.
                    self.close()
                    continue
                raise self._unavailable(f"the search service at {self.path} failed: {exc}") from None
            except OSError as exc:  # e.g. a timeout: the connection's state is unknown
                conn.close()
                raise self._unavailable(f"the search service at {self.path} failed: {exc}") from None
            header, payload = frame
            if str(header.get("error", "")).startswith("bad frame"):
                conn.close()  # the service drops a connection whose framing it lost
            else:
                with self._lock:
                    self._idle.append(conn)
            if not header.get("ok"):
                raise self._unavailable(f"the search service could not answer: {header.get('error')}")
            self.model_id = header.get("model_id", self.model_id)
            self.version = header.get("version", self.version)
            return header, payload
        raise AssertionError("unreachable")  # pragma: no cover

    def _unavailable(self, message: str) -> SemanticUnavailable:
        """The error to raise; logged at most once a minute (an outage, not every search that met it)."""
        now = time.monotonic()
        if self.log_failures and now - self._last_warning >= 60:
            self._last_warning = now
            log.warning("%s (failures are logged at most once a minute)", message)
        return SemanticUnavailable(message)

    def _connection(self) -> tuple[socket.socket, bool]:
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(self.health_timeout)  # connecting to a local socket is immediate or refused
        try:
            conn.connect(str(self.path))
        except OSError as exc:
            conn.close()
            raise self._unavailable(f"the search service at {self.path} does not answer: {exc}") from None
        return conn, False
