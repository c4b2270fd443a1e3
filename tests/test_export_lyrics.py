"""Batch export carries the official lyrics (.txt) and synced lines (.lrc) of each track."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from fastapi.testclient import TestClient

from music_core.db.connection import connect
from music_core.ingest import register_local_file
from music_core.storage import ObjectStore
from tests import media
from tests.test_api import AUTH, client  # noqa: F401 - the fixture

HOSTILE = 'Line one <script>alert("x")</script>\n../../etc/passwd'


def test_export_includes_lyrics_and_lrc(
    client: TestClient,  # noqa: F811 - the fixture imported above
    store: ObjectStore,
    db_url: str,
    tmp_path: Path,
) -> None:
    path = media.clip(tmp_path / "song.flac", 2.0)
    with_lyrics = register_local_file(store, db_url, path, "Pop/song.flac").track_id
    plain = register_local_file(
        store, db_url, media.clip(tmp_path / "other.flac", 3.0), "other.flac"
    ).track_id
    with connect(db_url) as conn:
        conn.execute(
            "UPDATE music_files SET genre = 'Pop', title = '../../escape' WHERE id = %s", (with_lyrics,)
        )
        lyrics_id = conn.execute(
            "INSERT INTO lyrics (file_id, source, lyrics_text) VALUES (%s, 'sidecar', %s) RETURNING id",
            (with_lyrics, HOSTILE),
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO comparisons (file_id, lyrics_id, synced_lrc) VALUES (%s, %s, %s)",
            (with_lyrics, lyrics_id, "[00:00.50] Line one\n"),
        )

    r = client.post("/export", json={"ids": [with_lyrics, plain], "include": ["lyrics"]}, headers=AUTH)
    assert r.status_code == 200
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        names = z.namelist()
        txt = next(n for n in names if n.endswith("/lyrics/song.txt"))
        lrc = next(n for n in names if n.endswith("/lyrics/song.lrc"))
        assert z.read(txt).decode() == HOSTILE + "\n"  # text stays text, byte for byte
        assert z.read(lrc).decode() == "[00:00.50] Line one\n"
    assert len(names) == 3  # two lyrics files and the metadata; the other track has none
    assert all(".." not in n.split("/") and not n.startswith("/") for n in names)
    assert txt.startswith("Pop/")
