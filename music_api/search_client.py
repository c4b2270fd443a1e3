"""The API's side of the search service (``music_api.search_service``): the same ``lookup`` as the
in-process ``SemanticIndex``, over the service's Unix socket. Imports neither numpy nor the encoder."""

from __future__ import annotations

import base64
import logging
import sys
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

log = logging.getLogger(__name__)


class SemanticUnavailable(RuntimeError):
    """Semantic search cannot answer now (the search service is down or failing)."""


@dataclass(frozen=True)
class Lookup:
    vector: Any  # the query's unit vector: a numpy array in process, array('f') from the service
    hits: list[tuple[int, float]] | None  # (embedding id, cosine), best first; None: no index yet


class RemoteSemanticIndex:
    def __init__(self, socket: Path, *, timeout: float = 60.0) -> None:
        # The read timeout covers the service's first start, which may export the encoder (~1 min).
        self.socket = socket
        self._client = httpx.Client(
            transport=httpx.HTTPTransport(uds=str(socket)),
            base_url="http://search-service",
            timeout=httpx.Timeout(timeout, connect=2.0),
        )
        self.model_id = ""  # learnt from the service's answers
        self.version: int | None = None

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise SemanticUnavailable(f"the search service at {self.socket} does not answer ({exc})") from exc
        if response.status_code != 200:
            raise SemanticUnavailable(
                f"the search service answered {response.status_code}: {response.text[:200]}"
            )
        body = response.json()
        self.model_id = body.get("model_id", self.model_id)
        self.version = body.get("version", self.version)
        return body

    def lookup(self, text: str, k: int) -> Lookup:
        body = self._call("POST", "/lookup", json={"text": text, "k": k})
        vector = array("f")
        vector.frombytes(base64.b64decode(body["vector"]))
        if sys.byteorder == "big":  # the service sends little-endian floats
            vector.byteswap()
        hits = body["hits"]
        return Lookup(vector, None if hits is None else [(int(i), float(s)) for i, s in hits])

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health")

    def warm_up_quietly(self) -> None:
        """The service warms itself up; this only learns its model id (and says if it is not there)."""
        try:
            self.health()
        except SemanticUnavailable as exc:
            log.warning("%s", exc)

    def close(self) -> None:
        self._client.close()
