"""Registration against the real S3 server and PostgreSQL."""

from __future__ import annotations

import hashlib
import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from minio.error import S3Error

from music_core import storage
from music_core.ingest import register_inbox_object, register_local_file
from music_core.naming import original_key
from music_core.storage import ObjectStore
from music_core.uploads import LocalFile, expand_paths, upload_to_inbox
from tests import media

PREFIX = "inbox/"


def aliases(db_url: str) -> list[tuple[str, str]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT file_id, original_name FROM file_aliases ORDER BY original_name"
        ).fetchall()


def count(db_url: str, table: str) -> int:
    with psycopg.connect(db_url) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 - test constant


def read_object(store: ObjectStore, key: str) -> bytes:
    return b"".join(store.iter_chunks(key))


def test_same_content_three_names_at_once_is_one_track_with_three_aliases(
    store: ObjectStore, db_url: str, tmp_path: Path
) -> None:
    names = ["a.wav", "Speech/b copy.wav", 'ünï ♫ it\'s "c".wav']
    for name in names:
        upload_to_inbox(store, PREFIX, LocalFile(media.SPEECH_WAV, name))
    keys = [o.key for o in store.list(PREFIX)]
    with ThreadPoolExecutor(3) as pool:  # three registrations racing each other
        results = list(pool.map(lambda k: register_inbox_object(store, db_url, k, PREFIX), keys))

    sha = hashlib.sha256(media.SPEECH_WAV.read_bytes()).hexdigest()
    assert {r.track_id for r in results if r} == {sha}
    assert sum(1 for r in results if r and r.created) == 1
    assert count(db_url, "music_files") == 1
    assert sorted(name for _, name in aliases(db_url)) == sorted(names)
    assert read_object(store, original_key(sha)) == media.SPEECH_WAV.read_bytes()
    assert list(store.list(PREFIX)) == []  # moved out of the inbox, nothing lost


def test_rerun_after_a_crash_duplicates_nothing(store: ObjectStore, db_url: str) -> None:
    key = upload_to_inbox(store, PREFIX, LocalFile(media.SPEECH_MP3, "jfk.mp3"))
    first = register_inbox_object(store, db_url, key, PREFIX)
    # The same object arrives again (a crash before the inbox delete, or a re-upload).
    upload_to_inbox(store, PREFIX, LocalFile(media.SPEECH_MP3, "jfk.mp3"))
    second = register_inbox_object(store, db_url, key, PREFIX)
    assert first and second and first.track_id == second.track_id
    assert second.created is False and second.duplicate_of is None
    assert count(db_url, "music_files") == 1
    assert count(db_url, "file_aliases") == 1
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT upload_count FROM file_aliases").fetchone()[0] == 2


def test_duplicate_reports_the_first_name(store: ObjectStore, db_url: str) -> None:
    a = register_local_file(store, db_url, media.SPEECH_WAV, "first.wav")
    b = register_local_file(store, db_url, media.SPEECH_WAV, "second.wav")
    assert (a.duplicate_of, b.duplicate_of) == (None, "first.wav")
    assert a.track_id == b.track_id


def test_vanished_object_is_skipped(store: ObjectStore, db_url: str) -> None:
    assert register_inbox_object(store, db_url, "inbox/never-was.mp3", PREFIX) is None


def test_hostile_and_long_names_are_kept_verbatim(store: ObjectStore, db_url: str) -> None:
    names = ["../../../etc/passwd.mp3", "x" * 300 + ".mp3", "quote\"' ; DROP TABLE music_files;--.mp3"]
    for name in names:
        key = upload_to_inbox(store, PREFIX, LocalFile(media.SPEECH_MP3, name))
        assert ".." not in key.split("/")
        register_inbox_object(store, db_url, key, PREFIX)
    assert sorted(n for _, n in aliases(db_url)) == sorted(names)
    assert count(db_url, "music_files") == 1


def test_expand_paths_takes_media_from_folders_and_any_named_file(tmp_path: Path) -> None:
    (tmp_path / "Rock").mkdir()
    (tmp_path / "Rock" / "song.MP3").write_bytes(b"x")
    (tmp_path / "Rock" / "cover.jpg").write_bytes(b"x")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "x.mp3").write_bytes(b"x")
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    found = list(expand_paths([tmp_path, notes, tmp_path / "missing.mp3"]))
    files = [f.name for f in found if isinstance(f, LocalFile)]
    problems = [f for f in found if not isinstance(f, LocalFile)]
    assert files == ["Rock/song.MP3", "notes.txt"]
    assert problems == [(str(tmp_path / "missing.mp3"), "no such file or directory")]


@pytest.mark.parametrize("limit", [storage.COPY_OBJECT_LIMIT, 0])  # CopyObject, and the multipart path
def test_a_copy_only_takes_the_version_that_was_hashed(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    monkeypatch.setattr(storage, "COPY_OBJECT_LIMIT", limit)
    put(store, "inbox/song.wav", b"the bytes that were hashed")
    hashed = store.stat("inbox/song.wav")
    put(store, "inbox/song.wav", b"bytes overwritten meanwhile")  # the same size

    with pytest.raises(S3Error):
        store.copy("inbox/song.wav", "originals/x", hashed.size, match_etag=hashed.etag)
    assert store.stat("originals/x") is None
    current = store.stat("inbox/song.wav")
    store.copy("inbox/song.wav", "originals/x", current.size, match_etag=current.etag)
    assert b"".join(store.iter_chunks("originals/x")) == b"bytes overwritten meanwhile"


def put(store: ObjectStore, key: str, data: bytes) -> None:
    store.put_stream(key, io.BytesIO(data), len(data), "audio/x-wav")
