"""Embedded services start, resume on the same data and stop without leaving processes behind."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import psycopg
import redis

from music_core.embedded import EmbeddedServices, ServiceEndpoints, load_or_create_secrets
from music_core.storage import ObjectStore
from tests.conftest import service_settings
from tests.lifecycle import processes_using


def wait_gone(data_dir: Path, timeout: float = 20) -> list:
    deadline = time.monotonic() + timeout
    while (left := processes_using(data_dir)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def test_start_stop_resume_and_attach(tmp_path: Path) -> None:
    settings = service_settings(tmp_path / "data")
    owner = EmbeddedServices(settings)
    ep = owner.start()
    try:
        with psycopg.connect(ep.database_url) as conn:
            conn.execute("CREATE TABLE kept (v int)")
            conn.execute("INSERT INTO kept VALUES (42)")
        store = ObjectStore(ep.s3_endpoint, ep.s3_access_key, ep.s3_secret_key, bucket=settings.bucket)
        assert store.client.bucket_exists(settings.bucket)
        assert redis.Redis.from_url(ep.redis_url).ping()

        # A second user of the same data dir attaches and does not stop what it did not start.
        visitor = EmbeddedServices(settings)
        assert visitor.start() == ep
        visitor.stop()
        with psycopg.connect(ep.database_url) as conn:
            assert conn.execute("SELECT v FROM kept").fetchone() == (42,)
    finally:
        owner.stop()
    assert wait_gone(settings.data_path) == []

    with EmbeddedServices(settings) as again:  # resumes on the same data
        with psycopg.connect(again.database_url) as conn:
            assert conn.execute("SELECT v FROM kept").fetchone() == (42,)
    assert wait_gone(settings.data_path) == []


def test_secrets_are_generated_once_and_private(tmp_path: Path) -> None:
    first = load_or_create_secrets(tmp_path)
    assert load_or_create_secrets(tmp_path) == first
    fresh = tmp_path / "new data dir"
    load_or_create_secrets(fresh)
    assert fresh.stat().st_mode & 0o077 == 0  # a data dir we create is the owner's only
    assert len(first["secret_key"]) >= 32 and len(set(first.values())) == len(first)
    assert (tmp_path / "secrets.json").stat().st_mode & 0o077 == 0
    assert len(first["s3_secret_key"]) >= 24


def test_an_older_data_dir_keeps_its_credentials_and_gains_new_secrets(tmp_path: Path) -> None:
    import json

    old = {"s3_access_key": "music-old", "s3_secret_key": "kept", "api_token": "kept-token"}
    (tmp_path / "secrets.json").write_text(json.dumps(old))
    upgraded = load_or_create_secrets(tmp_path)
    assert {k: upgraded[k] for k in old} == old and len(upgraded["secret_key"]) >= 32
    assert load_or_create_secrets(tmp_path) == upgraded
    assert (tmp_path / "secrets.json").stat().st_mode & 0o077 == 0


def test_the_s3_server_takes_more_buckets_than_free_disk_gigabytes(services: ServiceEndpoints) -> None:
    """weed caps its volume count at free disk / 1 GiB when it starts, and every bucket takes volumes:
    the suite's ~100 buckets ran out on a machine with 63 GB free. The cap is lifted explicitly."""
    master = int(services.s3_endpoint.rsplit(":", 1)[1]) + 1  # the master's port (see _start_s3)
    topology = httpx.get(f"http://127.0.0.1:{master}/dir/status", timeout=10).json()["Topology"]
    assert topology["Max"] >= 10_000


def test_wave_originals_are_stored_uncompressed(
    services: ServiceEndpoints, store: ObjectStore, tmp_path: Path
) -> None:
    """weed gzips objects typed audio/x-wav (the type Python and browsers give .wav): twice the CPU
    per upload and a decompression on every read, for PCM that barely shrinks. Objects are stored as
    audio/vnd.wave, which it keeps as is; the bytes come back the same."""
    wav = tmp_path / "song.wav"
    wav.write_bytes(b"RIFF" + bytes(range(256)) * 400)
    filer = int(services.s3_endpoint.rsplit(":", 1)[1]) + 2  # the filer's port (see _start_s3)
    for key, content_type in (("originals/ab/wave", "audio/x-wav"), ("originals/ab/wave2", "audio/wav")):
        store.put_file(key, wav, content_type)
        entry = httpx.get(f"http://127.0.0.1:{filer}/buckets/{store.bucket}/{key}?metadata=true", timeout=10)
        assert [chunk.get("is_compressed", False) for chunk in entry.json()["chunks"]] == [False]
        info = store.stat(key)
        assert info is not None and info.content_type == "audio/vnd.wave"
        assert b"".join(store.iter_chunks(key)) == wav.read_bytes()
    store.put_file("sidecars/ab/words.txt", wav, "text/plain")  # other types keep theirs
    info = store.stat("sidecars/ab/words.txt")
    assert info is not None and info.content_type == "text/plain"
