"""The search service's frames: what one side packs the other unpacks, and malformed frames are refused."""

from __future__ import annotations

import socket
import struct
import threading

import numpy as np
import pytest

from music_api.search_protocol import ProtocolError, pack_lookup, recv_frame, send_frame, unpack_lookup


def test_a_lookup_round_trips_with_and_without_hits() -> None:
    vector = np.linspace(-1, 1, 384, dtype=np.float32)
    hits = [(2**40 + 7, 0.875), (-1, -0.25), (3, 0.5)]
    for sent in (hits, [], None):
        header = {"dim": 384, "hits": None if sent is None else len(sent)}
        got_vector, got_hits = unpack_lookup(header, pack_lookup(vector.astype("<f4").tobytes(), sent))
        assert np.array_equal(np.array(got_vector, dtype=np.float32), vector)
        assert got_hits == sent


@pytest.mark.parametrize(
    ("header", "payload"),
    [({"dim": 4, "hits": 1}, b"\0" * 16), ({"dim": 4, "hits": None}, b"\0" * 17), ({"dim": 0, "hits": None}, b""),
     ({"dim": "4", "hits": None}, b"\0" * 16), ({"dim": 4, "hits": -1}, b"\0" * 4), ({}, b"")],
)  # fmt: skip
def test_malformed_lookup_answers_are_refused(header: dict, payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        unpack_lookup(header, payload)


def test_frames_cross_a_socket_in_pieces_and_limits_hold() -> None:
    left, right = socket.socketpair()
    with left, right:
        payload = bytes(range(256)) * 1000
        writer = threading.Thread(target=send_frame, args=(left, {"op": "x", "ü": [1, 2]}, payload))
        writer.start()
        assert recv_frame(right, 1 << 20) == ({"op": "x", "ü": [1, 2]}, payload)
        writer.join()
        send_frame(left, {"big": "x" * 100})
        with pytest.raises(ProtocolError, match="exceeds"):
            recv_frame(right, 64)
    a, b = socket.socketpair()
    with a, b:
        a.sendall(struct.pack(">II", 10, 0) + b"{}")
        a.shutdown(socket.SHUT_WR)
        with pytest.raises(ProtocolError, match="closed after 2 of 10"):
            recv_frame(b, 1 << 20)
    c, d = socket.socketpair()
    with c, d:
        c.close()
        assert recv_frame(d, 1 << 20) is None  # closed between frames
