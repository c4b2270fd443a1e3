"""The search service's frames: what one side packs the other unpacks, and malformed frames are refused."""

from __future__ import annotations

import socket
import stat
import struct
import threading
from pathlib import Path

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


def test_deeply_nested_json_is_a_protocol_error_not_a_crash() -> None:
    a, b = socket.socketpair()
    with a, b:
        a.sendall(struct.pack(">II", 60_000, 0) + b"[" * 60_000)
        with pytest.raises(ProtocolError, match="not JSON"):
            recv_frame(b, 1 << 20)


def test_a_loading_service_says_so_at_once(tmp_path: Path) -> None:
    """Before the warm-up starts and while the model loads (a first start exports it for about a minute),
    lookups are answered "loading" at once instead of holding the API's threads; health says not ready."""
    from music_api.search_service import answer
    from music_api.semantic import SemanticIndex
    from music_core.storage import ObjectStore

    engine = SemanticIndex(ObjectStore("127.0.0.1:1", "a", "b", bucket="x"), None, encoder_cache=tmp_path)
    loading = {"ok": False, "error": "the search service is loading its model; try again shortly"}
    assert answer(engine, {"op": "lookup", "text": "hello", "k": 3}) == (loading, b"")  # before the warm-up
    with engine._model_lock:  # as the warm-up thread holds it while loading
        engine._load_attempted = True
        assert answer(engine, {"op": "lookup", "text": "hello", "k": 3}) == (loading, b"")
        health = answer(engine, {"op": "health"})[0]
        assert health["model_loaded"] is False and health["ready"] is False
    assert not engine.loading  # a failed attempt: lookups try to load it themselves


def test_the_socket_directory_must_be_private(tmp_path: Path) -> None:
    from music_core.private_dir import private_directory as checked

    def private_directory(path: Path) -> None:
        checked(path, "the socket")

    made = tmp_path / "a" / "run"
    private_directory(made)
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o755)
    private_directory(mine)  # accepted, and its mode is left alone
    assert stat.S_IMODE(mine.stat().st_mode) == 0o755
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(RuntimeError, match="other users may write"):
        private_directory(shared)
    (tmp_path / "link").symlink_to(mine)
    with pytest.raises(RuntimeError, match="not a directory"):
        private_directory(tmp_path / "link")


def test_the_service_leaves_what_is_not_a_socket_alone(tmp_path: Path) -> None:
    """A regular file where the socket should be: a clear error and the file kept. A stale link is
    replaced (its target kept); the socket is 0600 and takes a burst of connections."""
    from music_api.search_service import SearchServer
    from music_api.semantic import SemanticIndex
    from music_core.storage import ObjectStore

    engine = SemanticIndex(ObjectStore("127.0.0.1:1", "a", "b", bucket="x"), None, encoder_cache=tmp_path)
    taken = tmp_path / "run" / "search.sock"
    taken.parent.mkdir(mode=0o700)
    taken.write_text("my notes")
    with pytest.raises(RuntimeError, match="not a socket"):
        SearchServer(taken, engine)
    assert taken.read_text() == "my notes"
    (tmp_path / "run" / "link.sock").symlink_to(taken)  # a link is replaced, its target left alone
    server = SearchServer(tmp_path / "run" / "link.sock", engine)
    try:
        assert (tmp_path / "run" / "link.sock").is_socket() and taken.read_text() == "my notes"
        assert stat.S_IMODE((tmp_path / "run" / "link.sock").stat().st_mode) == 0o600
        # Every API thread may reconnect at once after a restart: 64 connects queue in the backlog
        # (socketserver's default of 5 refused the 7th at once) even before one is accepted.
        clients = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(64)]
        for client in clients:
            client.settimeout(1)
            client.connect(str(tmp_path / "run" / "link.sock"))
        for client in clients:
            client.close()
    finally:
        server.server_close()
    assert not (tmp_path / "run" / "link.sock").exists()
