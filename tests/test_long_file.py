"""A one-hour file goes through every stage (memory figures: make bench-ingest)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import psycopg
import pytest

from music_core.storage import ObjectStore
from music_core.uploads import LocalFile, upload_to_inbox
from tests import media
from tests.test_pipeline import run_sensors_to_completion

ONE_HOUR = 3600


@pytest.mark.slow
def test_one_hour_file(defs: dg.Definitions, store: ObjectStore, db_url: str, media_dir: Path) -> None:
    path = media.long_tone(media_dir / "one-hour.mp3", ONE_HOUR)
    upload_to_inbox(store, "inbox/", LocalFile(path, "Ambient/one hour.mp3"))

    run_sensors_to_completion(defs, dg.DagsterInstance.ephemeral())

    with psycopg.connect(db_url) as conn:
        duration, converted, genre = conn.execute(
            "SELECT duration, converted_duration, genre FROM music_files"
        ).fetchone()
        statuses = dict(conn.execute("SELECT stage, status FROM track_stages").fetchall())
        no_vocals = conn.execute("SELECT no_vocals FROM transcriptions").fetchone()[0]
    # A warbling tone for an hour: transcribed in ten-minute chunks, recorded as instrumental.
    assert statuses == {
        "audio_file": "done",
        "converted_audio": "done",
        "transcription": "done",
        "embedding": "skipped",
        "lyrics": "skipped",
        "comparison": "skipped",
    }
    assert no_vocals is True
    assert duration == pytest.approx(ONE_HOUR, abs=0.5)
    assert converted == pytest.approx(duration, abs=0.1)
    assert genre == "Ambient"
