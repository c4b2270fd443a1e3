"""The search service's wire format over its Unix socket: one frame per request and per answer.

A frame is two big-endian uint32 lengths (JSON header, binary payload), the UTF-8 JSON header, then the
payload. A lookup answer's payload is the query vector (float32), then the hits' embedding ids (int64)
and cosines (float32), all little-endian; the header says ``dim`` and ``hits`` (None: no index yet).
An HTTP/JSON exchange cost about 5 ms of CPU per query between the two processes (FastAPI, pydantic and
httpx on both ends, measured in bench-api); a frame costs a few tens of microseconds."""

from __future__ import annotations

import json
import socket
import struct
import sys
from array import array
from typing import Any

_PREFIX = struct.Struct(">II")
MAX_REQUEST_BYTES = 64 * 1024  # a query is at most a few KB
MAX_ANSWER_BYTES = 16 * 1024 * 1024  # 10,000 hits of 12 bytes and a vector


class ProtocolError(Exception):
    """A frame that is truncated, too large or not JSON."""


def send_frame(sock: socket.socket, header: dict[str, Any], payload: bytes = b"") -> None:
    head = json.dumps(header, separators=(",", ":")).encode()
    sock.sendall(_PREFIX.pack(len(head), len(payload)) + head + payload)


def recv_frame(sock: socket.socket, max_bytes: int) -> tuple[dict[str, Any], bytes] | None:
    """The next frame, or None when the peer closed the connection between frames."""
    prefix = _recv_exact(sock, _PREFIX.size, eof_ok=True)
    if prefix is None:
        return None
    head_len, payload_len = _PREFIX.unpack(prefix)
    if head_len + payload_len > max_bytes:
        raise ProtocolError(f"frame of {head_len + payload_len} bytes exceeds {max_bytes}")
    head = _recv_exact(sock, head_len)
    payload = _recv_exact(sock, payload_len) if payload_len else b""
    try:
        header = json.loads(head)  # type: ignore[arg-type]
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: [[[[... nested
        raise ProtocolError(f"header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise ProtocolError("header is not a JSON object")
    return header, payload  # type: ignore[return-value]


def _recv_exact(sock: socket.socket, size: int, *, eof_ok: bool = False) -> bytes | None:
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:])
        if n == 0:
            if got == 0 and eof_ok:
                return None
            raise ProtocolError(f"connection closed after {got} of {size} bytes")
        got += n
    return bytes(buffer)


def pack_lookup(vector: bytes, hits: list[tuple[int, float]] | None) -> bytes:
    """``vector``: float32 little-endian bytes."""
    if not hits:
        return vector
    ids = array("q", [i for i, _ in hits])
    scores = array("f", [s for _, s in hits])
    if sys.byteorder == "big":
        ids.byteswap()
        scores.byteswap()
    return vector + ids.tobytes() + scores.tobytes()


def unpack_lookup(header: dict[str, Any], payload: bytes) -> tuple[array, list[tuple[int, float]] | None]:
    dim, count = header.get("dim"), header.get("hits")

    def natural(value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    if not natural(dim) or dim < 1 or not (count is None or natural(count)):  # type: ignore[operator]
        raise ProtocolError(f"malformed lookup header: {header}")
    n = count or 0
    if len(payload) != dim * 4 + n * 12:
        raise ProtocolError(f"lookup payload of {len(payload)} bytes for dim {dim} and {n} hits")
    vector, ids, scores = array("f"), array("q"), array("f")
    vector.frombytes(payload[: dim * 4])
    ids.frombytes(payload[dim * 4 : dim * 4 + n * 8])
    scores.frombytes(payload[dim * 4 + n * 8 :])
    if sys.byteorder == "big":
        for values in (vector, ids, scores):
            values.byteswap()
    return vector, None if count is None else list(zip(ids.tolist(), scores.tolist(), strict=True))
