"""Local copies of streamed audio (music_api/audio_cache.py): made after the first GET, served for
every range form, never served for a replaced object after revalidation, evicted least recently used
first, and never a reason for a failed request."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from music_api.audio_cache import AudioCache
from music_api.generation_cache import GenerationCache
from music_api.main import create_app
from music_core.cache_generation import bump_generation
from music_core.embedded import ServiceEndpoints
from music_core.ingest import register_local_file
from music_core.storage import ObjectStore
from tests.test_api import AUTH, api_settings, flush_cache

SIZE = 3_000_000  # three 1 MiB chunks and a bit: whole GETs stream from the copy in several reads


@pytest.fixture
def track(store: ObjectStore, db_url: str, tmp_path: Path) -> tuple[str, str, bytes]:
    data = os.urandom(SIZE)
    path = tmp_path / "noise.wav"
    path.write_bytes(data)
    track_id = register_local_file(store, db_url, path, "noise.wav").track_id
    with psycopg.connect(db_url) as conn:
        key = conn.execute("SELECT storage_path FROM music_files WHERE id = %s", (track_id,)).fetchone()[0]
    return track_id, key, data


@pytest.fixture
def client(services: ServiceEndpoints, store: ObjectStore, tmp_path: Path) -> Iterator[TestClient]:
    flush_cache(services)
    settings = api_settings(services, store.bucket, stream_cache_dir=tmp_path / "copies")
    with TestClient(create_app(settings, warm_up=False)) as c:
        yield c


def _asked_twice(client: TestClient, url: str, cache: AudioCache, store: ObjectStore, key: str) -> None:
    """A copy is made when an object is asked for a second time: not after the first request."""
    client.get(url, headers={**AUTH, "Range": "bytes=0-9"})
    info = store.stat(key)
    assert info is not None and not cache.path(key, info.etag).exists() and not cache._filling
    client.get(url, headers={**AUTH, "Range": "bytes=10-19"})


def _copied(client: TestClient, store: ObjectStore, track_id: str, key: str) -> tuple[str, AudioCache, Path]:
    """The track's audio URL, the app's cache, and the copy made after two requests."""
    url = f"/tracks/{track_id}/audio"
    cache: AudioCache = client.app.state.audio_cache  # type: ignore[attr-defined]
    _asked_twice(client, url, cache, store, key)
    return url, cache, _copy_made(cache, store, key)


def _copy_made(cache: AudioCache, store: ObjectStore, key: str) -> Path:
    info = store.stat(key)
    assert info is not None
    path = cache.path(key, info.etag)
    deadline = time.monotonic() + 20
    while not path.exists():
        assert time.monotonic() < deadline, "no copy was made"
        time.sleep(0.05)
    return path


def test_a_streamed_object_is_copied_and_every_range_form_is_served_from_the_copy(
    client: TestClient, store: ObjectStore, track: tuple[str, str, bytes]
) -> None:
    track_id, key, data = track
    url, cache, copy = _copied(client, store, track_id, key)
    assert copy.read_bytes() == data and copy.stat().st_mode & 0o077 == 0
    assert cache.directory.stat().st_mode & 0o077 == 0
    first = client.get(url, headers={**AUTH, "Range": "bytes=0-99"})  # the stat finds the copy
    assert first.status_code == 206 and first.content == data[:100]
    etag = first.headers["etag"]
    store.delete(key)  # from here on only the copy can answer (it is trusted for the revalidation period)
    whole = client.get(url, headers=AUTH)
    assert whole.status_code == 200 and whole.content == data and whole.headers["etag"] == etag
    assert whole.headers["content-length"] == str(SIZE)
    seek = client.get(url, headers={**AUTH, "Range": "bytes=2000000-2999999"})
    assert seek.status_code == 206 and seek.content == data[2_000_000:3_000_000]
    assert seek.headers["content-range"] == f"bytes 2000000-2999999/{SIZE}"
    big = client.get(url, headers={**AUTH, "Range": "bytes=100-"})  # over one read: streamed in chunks
    assert big.status_code == 206 and big.content == data[100:]
    multi = client.get(url, headers={**AUTH, "Range": "bytes=0-9, 2999990-"})
    assert multi.status_code == 206 and multi.headers["content-type"].startswith("multipart/byteranges")
    assert data[:10] in multi.content and data[-10:] in multi.content
    assert int(multi.headers["content-length"]) == len(multi.content)
    stale = client.get(url, headers={**AUTH, "Range": "bytes=0-9", "If-Range": '"other"'})
    assert stale.status_code == 200 and stale.content == data
    fresh = client.get(url, headers={**AUTH, "Range": "bytes=0-9", "If-Range": etag})
    assert fresh.status_code == 206 and fresh.content == data[:10]
    head = client.head(url, headers={**AUTH, "Range": "bytes=5-14"})
    assert head.status_code == 206 and head.headers["content-length"] == "10" and head.content == b""
    beyond = client.get(url, headers={**AUTH, "Range": f"bytes={SIZE}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{SIZE}"
    usage = client.get("/storage/stats", headers=AUTH).json()["audio_copies"]
    assert usage == {"path": str(cache.directory), "copies": 1, "bytes": SIZE, "limit_bytes": 2 * 1024**3}


def test_a_replaced_object_is_not_served_from_the_old_copy_after_revalidation(
    client: TestClient, store: ObjectStore, track: tuple[str, str, bytes], tmp_path: Path
) -> None:
    track_id, key, data = track
    url = f"/tracks/{track_id}/audio"
    cache = AudioCache(tmp_path / "short", 64 * 1024 * 1024, revalidate_seconds=0)
    client.app.state.audio_cache = cache  # type: ignore[attr-defined]
    _asked_twice(client, url, cache, store, key)
    _copy_made(cache, store, key)
    new = os.urandom(SIZE)  # same size, other bytes: only the ETag tells them apart
    (tmp_path / "new.bin").write_bytes(new)
    store.put_file(key, tmp_path / "new.bin", "audio/wav")
    r = client.get(url, headers={**AUTH, "Range": "bytes=0-999"})
    assert r.status_code == 206 and r.content == new[:1000]
    store.delete(key)
    gone = client.get(url, headers=AUTH)
    assert gone.status_code == 404 and gone.json()["detail"] == "audio object is missing from the bucket"
    cache.close()


def test_an_evicted_copy_falls_back_to_the_bucket(
    client: TestClient, store: ObjectStore, track: tuple[str, str, bytes]
) -> None:
    track_id, key, data = track
    url, cache, copy = _copied(client, store, track_id, key)
    assert client.get(url, headers={**AUTH, "Range": "bytes=0-9"}).content == data[:10]  # now known
    copy.unlink()  # as another worker's eviction would
    r = client.get(url, headers={**AUTH, "Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == data[10:20]
    client.get(url, headers={**AUTH, "Range": "bytes=20-29"})  # asked for again: copied again
    assert _copy_made(cache, store, key).read_bytes() == data


def test_a_damaged_copy_is_never_served_and_is_made_again(
    client: TestClient, store: ObjectStore, track: tuple[str, str, bytes]
) -> None:
    track_id, key, data = track
    url, cache, copy = _copied(client, store, track_id, key)
    assert client.get(url, headers={**AUTH, "Range": "bytes=0-9"}).content == data[:10]
    os.truncate(copy, 1000)  # damaged after it was checked (its size no longer matches)
    large = client.get(url, headers={**AUTH, "Range": "bytes=500-"})  # would stream in several reads
    assert large.status_code == 206 and large.content == data[500:]
    small = client.get(url, headers={**AUTH, "Range": "bytes=2000-2999"})
    assert small.status_code == 206 and small.content == data[2000:3000]
    deadline = time.monotonic() + 20  # the stat found its size wrong: deleted and copied again
    while not (copy.exists() and copy.stat().st_size == SIZE):
        assert time.monotonic() < deadline, "the damaged copy was not replaced"
        time.sleep(0.05)
    assert copy.read_bytes() == data


def test_with_copies_off_nothing_is_written(
    services: ServiceEndpoints, store: ObjectStore, track: tuple[str, str, bytes], tmp_path: Path
) -> None:
    track_id, _, data = track
    settings = api_settings(services, store.bucket, stream_cache_bytes=0, stream_cache_dir=tmp_path / "c")
    with TestClient(create_app(settings, warm_up=False)) as c:
        assert c.app.state.audio_cache is None  # type: ignore[attr-defined]
        assert c.get(f"/tracks/{track_id}/audio", headers=AUTH).content == data
        assert c.get("/storage/stats", headers=AUTH).json()["audio_copies"] is None
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("where", ["under a file", "writable by others"])
def test_an_unusable_or_shared_cache_directory_turns_copies_off(
    services: ServiceEndpoints, store: ObjectStore, track: tuple[str, str, bytes], tmp_path: Path, where: str
) -> None:
    track_id, _, data = track
    (tmp_path / "file").write_text("not a directory")
    directory = tmp_path / "file" / "copies"
    if where == "writable by others":
        directory = tmp_path / "shared"
        directory.mkdir()
        directory.chmod(0o777)  # another user could plant a file under a copy's name
    settings = api_settings(services, store.bucket, stream_cache_dir=directory)
    with TestClient(create_app(settings, warm_up=False)) as c:
        assert c.app.state.audio_cache is None  # type: ignore[attr-defined]
        for _ in range(2):
            assert c.get(f"/tracks/{track_id}/audio", headers=AUTH).content == data
    assert not directory.exists() or list(directory.iterdir()) == []


# --- AudioCache on its own ------------------------------------------------------------------------------


def _put(store: ObjectStore, tmp_path: Path, key: str, size: int) -> bytes:
    data = os.urandom(size)
    (tmp_path / "blob").write_bytes(data)
    store.put_file(key, tmp_path / "blob", "audio/wav")
    return data


def _idle(cache: AudioCache) -> None:
    deadline = time.monotonic() + 20
    while cache._filling:
        assert time.monotonic() < deadline, "the copy did not finish"
        time.sleep(0.02)


def _etag(store: ObjectStore, key: str) -> str:
    info = store.stat(key)
    assert info is not None
    return info.etag


def test_fill_copies_this_version_and_revalidate_finds_it(store: ObjectStore, tmp_path: Path) -> None:
    cache = AudioCache(tmp_path / "c", 10_000_000)
    data = _put(store, tmp_path, "a/1", 100_000)
    etag = _etag(store, "a/1")
    copy = cache.fill(store, "a/1", etag)
    assert copy is not None and copy.path.read_bytes() == data and (copy.size, copy.etag) == (len(data), etag)
    assert cache.revalidate("a/1", len(data), etag) == copy and cache.fresh("a/1") == copy
    assert cache.revalidate("a/1", len(data), "another-etag") is None and cache.fresh("a/1") is None
    assert cache.fill(store, "a/1", etag) is None  # already there
    assert cache.fill(store, "a/1", "an-older-etag") is None  # the object changed since its stat
    assert not cache.path("a/1", "an-older-etag").exists()
    assert cache.fill(store, "a/missing", "x") is None
    assert sorted(p.name for p in cache.directory.iterdir()) == [copy.path.name]  # no .part left
    cache.close()


def test_fresh_expires_after_the_revalidation_period(store: ObjectStore, tmp_path: Path) -> None:
    now = [0.0]
    cache = AudioCache(tmp_path / "c", 10_000_000, revalidate_seconds=60, clock=lambda: now[0])
    _put(store, tmp_path, "a/1", 1000)
    copy = cache.fill(store, "a/1", _etag(store, "a/1"))
    assert copy is not None and cache.revalidate("a/1", copy.size, copy.etag) == copy
    now[0] = 59.9
    assert cache.fresh("a/1") == copy
    now[0] = 60.0
    assert cache.fresh("a/1") is None
    cache.close()


def test_least_recently_used_copies_go_first_and_only_copies_are_ever_deleted(
    store: ObjectStore, tmp_path: Path
) -> None:
    cache = AudioCache(tmp_path / "c", 400_000, stale_part_seconds=600)  # objects up to 100,000 bytes
    foreign = cache.directory / "notes.txt"
    foreign.write_bytes(b"x" * 500_000)  # not a copy: never counted, never deleted
    os.utime(foreign, (1, 1))
    stale_part = cache.directory / ("0" * 64 + "." + "0" * 16 + ".part")  # left by a worker that died
    stale_part.write_bytes(b"half")
    os.utime(stale_part, (time.time() - 601, time.time() - 601))
    copies = {}
    for n in range(4):
        _put(store, tmp_path, f"k/{n}", 100_000)
        copies[n] = cache.fill(store, f"k/{n}", _etag(store, f"k/{n}"))
        os.utime(copies[n].path, (1000 + n, 1000 + n))  # type: ignore[union-attr]
    assert all(c is not None and c.path.exists() for c in copies.values())
    assert not stale_part.exists()
    old = copies[0]
    assert old is not None and cache.revalidate("k/0", old.size, old.etag) is not None  # used: newest now
    _put(store, tmp_path, "k/4", 100_000)
    assert cache.fill(store, "k/4", _etag(store, "k/4")) is not None
    assert not copies[1].path.exists()  # type: ignore[union-attr]
    assert all(copies[n].path.exists() for n in (0, 2, 3))  # type: ignore[union-attr]
    assert foreign.read_bytes() == b"x" * 500_000
    _put(store, tmp_path, "k/big", 100_001)
    assert not cache.eligible(100_001) and cache.fill(store, "k/big", _etag(store, "k/big")) is None
    cache.close()


def test_a_copy_another_worker_is_writing_is_left_alone_and_a_stale_one_swept(
    store: ObjectStore, tmp_path: Path
) -> None:
    cache = AudioCache(tmp_path / "c", 10_000_000, stale_part_seconds=600)
    data = _put(store, tmp_path, "a/1", 5000)
    etag = _etag(store, "a/1")
    part = cache.path("a/1", etag).with_name(cache.path("a/1", etag).name + "." + "a" * 16 + ".part")
    part.write_bytes(b"half")
    assert cache.fill(store, "a/1", etag) is None and part.read_bytes() == b"half"  # someone else's
    os.utime(part, (time.time() - 601, time.time() - 601))  # left by a worker that died
    copy = cache.fill(store, "a/1", etag)
    assert copy is not None and copy.path.read_bytes() == data
    assert not part.exists()  # swept after the copy
    assert [p.name for p in cache.directory.iterdir()] == [copy.path.name]
    cache.close()


def test_copies_are_scheduled_on_the_second_request_once_at_a_time_and_back_off_after_a_failure(
    store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [0.0]
    cache = AudioCache(tmp_path / "c", 10_000_000, queued=1, revalidate_seconds=60, clock=lambda: now[0])
    data = _put(store, tmp_path, "a/1", 5000)
    etag = _etag(store, "a/1")
    release, real_fill = threading.Event(), cache.fill

    def held_fill(*args: object) -> object:
        release.wait(10)
        return real_fill(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(cache, "fill", held_fill)
    assert cache.schedule_fill(store, "a/1", len(data), etag) is False  # asked once
    assert cache.schedule_fill(store, "a/1", len(data), etag) is True  # asked again: copied
    assert cache.schedule_fill(store, "a/1", len(data), etag) is False  # already being copied
    assert cache.schedule_fill(store, "b/1", 5000, "e") is False  # asked once
    assert cache.schedule_fill(store, "b/1", 5000, "e") is False  # the queue (1) is full
    release.set()
    _idle(cache)
    assert cache.path("a/1", etag).read_bytes() == data

    broken = AudioCache(tmp_path / "d", 10_000_000, clock=lambda: now[0])
    broken.directory.rmdir()
    broken.directory.write_text("no longer a directory")  # the copy cannot be written, even by root
    assert broken.schedule_fill(store, "a/1", len(data), etag) is False
    assert broken.schedule_fill(store, "a/1", len(data), etag) is True
    _idle(broken)
    assert broken.schedule_fill(store, "a/1", len(data), etag) is False  # backs off after the failure
    assert broken.schedule_fill(store, "a/1", len(data), etag) is False
    now[0] = 60.0
    assert broken.schedule_fill(store, "a/1", len(data), etag) is False  # asked once again
    assert broken.schedule_fill(store, "a/1", len(data), etag) is True
    _idle(broken)
    broken.close()
    assert broken.schedule_fill(store, "a/1", len(data), etag) is False  # closed


def test_closing_stops_a_copy_in_progress(store: ObjectStore, tmp_path: Path) -> None:
    cache = AudioCache(tmp_path / "c", 100_000_000)
    _put(store, tmp_path, "a/1", 3_000_000)
    etag = _etag(store, "a/1")
    first_chunk, go = threading.Event(), threading.Event()

    class HeldStore:
        def open_stream(self, key: str, chunk_size: int) -> object:
            opened = store.open_stream(key, chunk_size)
            assert opened is not None
            info, chunks = opened

            def held() -> Iterator[bytes]:
                try:
                    for n, chunk in enumerate(chunks):
                        yield chunk
                        if n == 0:
                            first_chunk.set()
                            go.wait(10)
                finally:
                    chunks.close()

            return info, held()

    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(cache.fill(HeldStore(), "a/1", etag)))  # type: ignore[arg-type]
    worker.start()
    assert first_chunk.wait(10)
    cache.close()
    go.set()
    worker.join(10)
    assert result == [None] and list(cache.directory.iterdir()) == []
    assert cache.schedule_fill(store, "a/1", 3_000_000, etag) is False  # closed: nothing new


# --- the track's audio row, cached per write generation ------------------------------------------------


def test_a_tracks_audio_row_is_kept_until_the_pipeline_next_writes(
    client: TestClient, services: ServiceEndpoints, store: ObjectStore, db_url: str, tmp_path: Path
) -> None:
    data = os.urandom(5000)
    (tmp_path / "a.wav").write_bytes(data)
    track_id = register_local_file(store, db_url, tmp_path / "a.wav", "a.wav").track_id
    url = f"/tracks/{track_id}/audio?version=converted"
    assert client.get(url, headers=AUTH).json()["detail"] == "this track has no converted audio yet"
    with psycopg.connect(db_url) as conn:  # a conversion lands, written as the pipeline would...
        key = conn.execute("SELECT storage_path FROM music_files WHERE id = %s", (track_id,)).fetchone()[0]
        conn.execute(
            "UPDATE music_files SET converted_path = %s, converted_size = %s WHERE id = %s",
            (key, len(data), track_id),
        )
    time.sleep(0.15)  # past the limiter's sync period: the generation is read again
    assert client.get(url, headers=AUTH).status_code == 404  # ...but without bumping the generation
    bump_generation(services.redis_url)
    time.sleep(0.15)
    converted = client.get(url, headers=AUTH)
    assert converted.status_code == 200 and converted.content == data


def test_generation_cache_keeps_one_generation_for_a_while_and_stays_bounded() -> None:
    now = [0.0]
    cache: GenerationCache[str] = GenerationCache(capacity=2, ttl_seconds=300, clock=lambda: now[0])
    cache.put(None, "a", "unknown generation")  # Redis unreachable: nothing is kept
    assert cache.get(None, "a") is None and len(cache) == 0
    assert cache.get(b"1", "a") is None  # the worker now knows generation 1
    cache.put(b"1", "a", "A1")
    assert cache.get(b"1", "a") == "A1"
    cache.put(b"1", "b", "B1")
    cache.get(b"1", "a")  # a is now the most recently used
    cache.put(b"1", "c", "C1")
    assert len(cache) == 2 and cache.get(b"1", "b") is None and cache.get(b"1", "a") == "A1"
    assert cache.get(b"2", "a") is None and len(cache) == 0  # a new generation drops everything
    cache.put(b"1", "a", "read before the write")  # a slower request of the old generation: dropped
    assert cache.get(b"2", "a") is None
    assert cache.get(b"1", "a") is None  # a restarted Redis counts from 1 again: a change all the same
    cache.put(b"1", "a", "A1 again")
    assert cache.get(b"1", "a") == "A1 again"
    now[0] = 300.0
    assert cache.get(b"1", "a") is None  # expired: for writes whose bump never reached Redis
