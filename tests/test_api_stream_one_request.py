"""Streaming's single-request path (the object's size and etag taken from the GET itself) and its
fallbacks: a recorded size that differs from the object, and an object missing from the bucket. The
path serves objects that get no local copy (copies off here; tests/test_audio_copies.py has them)."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from music_api.main import create_app
from music_core.embedded import ServiceEndpoints
from music_core.ingest import register_local_file
from music_core.naming import original_key
from music_core.storage import ObjectStore
from tests.test_api import AUTH, api_settings, flush_cache


@pytest.fixture
def track(store: ObjectStore, db_url: str, tmp_path: Path) -> tuple[str, bytes]:
    data = os.urandom(300_000)  # several 256 KB chunks
    path = tmp_path / "noise.wav"
    path.write_bytes(data)
    return register_local_file(store, db_url, path, "noise.wav").track_id, data


@pytest.fixture
def client(services: ServiceEndpoints, store: ObjectStore) -> TestClient:
    flush_cache(services)
    settings = api_settings(services, store.bucket, stream_cache_bytes=0)
    with TestClient(create_app(settings, warm_up=False)) as c:
        yield c  # type: ignore[misc]


def test_whole_and_ranges_carry_the_objects_etag(client: TestClient, track: tuple[str, bytes]) -> None:
    track_id, data = track
    url = f"/tracks/{track_id}/audio"
    etag = client.head(url, headers=AUTH).headers["etag"]
    assert etag.startswith('"') and len(etag) > 2
    whole = client.get(url, headers=AUTH)
    assert whole.status_code == 200 and whole.content == data and whole.headers["etag"] == etag
    assert whole.headers["content-length"] == str(len(data))
    part = client.get(url, headers={**AUTH, "Range": "bytes=262000-262999"})
    assert part.status_code == 206 and part.content == data[262000:263000] and part.headers["etag"] == etag
    assert part.headers["content-range"] == f"bytes 262000-262999/{len(data)}"
    open_ended = client.get(url, headers={**AUTH, "Range": "bytes=299990-"})
    assert open_ended.content == data[299990:]
    assert open_ended.headers["content-range"] == f"bytes 299990-299999/{len(data)}"


@pytest.mark.parametrize("recorded_delta", [-1000, 1000])
def test_a_recorded_size_that_differs_from_the_object_is_not_trusted(
    client: TestClient, track: tuple[str, bytes], db_url: str, recorded_delta: int
) -> None:
    track_id, data = track
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "UPDATE music_files SET file_size = file_size + %s WHERE id = %s", (recorded_delta, track_id)
        )
    url = f"/tracks/{track_id}/audio"
    whole = client.get(url, headers=AUTH)
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["content-length"] == str(len(data))
    tail = client.get(url, headers={**AUTH, "Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == data[-10:]
    assert tail.headers["content-range"] == f"bytes {len(data) - 10}-{len(data) - 1}/{len(data)}"
    beyond = client.get(url, headers={**AUTH, "Range": f"bytes={len(data) + 500}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(data)}"


def test_an_object_missing_from_the_bucket_is_404(
    client: TestClient, track: tuple[str, bytes], store: ObjectStore, db_url: str
) -> None:
    track_id, _ = track
    with psycopg.connect(db_url) as conn:
        key = conn.execute("SELECT storage_path FROM music_files WHERE id = %s", (track_id,)).fetchone()[0]
    store.delete(key)
    for headers in (AUTH, {**AUTH, "Range": "bytes=0-99"}):
        r = client.get(f"/tracks/{track_id}/audio", headers=headers)
        assert r.status_code == 404 and r.json()["detail"] == "audio object is missing from the bucket"


def test_open_stream_reports_the_objects_size_and_etag(store: ObjectStore, tmp_path: Path) -> None:
    data = os.urandom(50_000)
    (tmp_path / "x.bin").write_bytes(data)
    store.put_file("x/x.bin", tmp_path / "x.bin", "application/octet-stream")
    stat = store.stat("x/x.bin")
    assert stat is not None
    opened = store.open_stream("x/x.bin", 4096, offset=1000, length=20_000)
    assert opened is not None
    info, chunks = opened
    assert (info.size, info.etag) == (len(data), stat.etag)
    parts = list(chunks)
    assert b"".join(parts) == data[1000:21000] and max(len(p) for p in parts) <= 4096
    whole = store.open_stream("x/x.bin")
    assert whole is not None and whole[0].size == len(data)
    whole[1].close()  # released without reading
    assert store.open_stream("x/missing.bin") is None


def test_redirect_mode_hands_the_bytes_to_the_object_store(
    services: ServiceEndpoints, store: ObjectStore, track: tuple[str, bytes]
) -> None:
    import httpx

    track_id, data = track
    settings = api_settings(services, store.bucket, stream_redirect=True, stream_redirect_seconds=60)
    with TestClient(create_app(settings, warm_up=False)) as client:
        url = f"/tracks/{track_id}/audio"
        answer = client.get(url, headers=AUTH, follow_redirects=False)
        assert answer.status_code == 307 and answer.headers["cache-control"] == "private, no-store"
        location = answer.headers["location"]
        assert "X-Amz-Signature=" in location and "X-Amz-Expires=60" in location
        seek = httpx.get(location, headers={"Range": "bytes=1000-1999"})  # the browser's next request
        assert seek.status_code == 206 and seek.content == data[1000:2000]
        assert seek.headers["content-type"].startswith("audio/")  # signed into the URL by the API
        assert "noise.wav" in seek.headers["content-disposition"]
        assert client.get(url, follow_redirects=False).status_code == 401  # still authenticated first
        assert (
            client.get(f"/tracks/{'0' * 64}/audio", headers=AUTH, follow_redirects=False).status_code == 404
        )
        store.delete(original_key(track_id))
        assert client.get(url, headers=AUTH, follow_redirects=False).status_code == 404
