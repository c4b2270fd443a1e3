"""Synced lyrics through the real pipeline: per-line method and confidence stored with the comparison,
and the timing difference against a sidecar LRC (as for LRCLIB's synced lyrics)."""

from __future__ import annotations

import uuid
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from music_core.compare import normalise_words
from music_core.embedded import ServiceEndpoints
from music_core.lyrics.lrc import parse_lrc
from music_core.storage import ObjectStore
from music_pipeline import definitions
from music_pipeline.oneshot import process_paths
from tests import media
from tests.conftest import APP_TABLES
from tests.test_api import api_settings

# Where the lines of demo/jfk.wav begin (by ear and waveform), and a line nobody sings.
REFERENCE = (
    "[00:00.35] And so, my fellow Americans,\n"
    "[00:03.20] ask not what your country can do for you,\n"
    "[00:08.20] ask what you can do for your country.\n"
    "[00:10.80] (guitar solo fades out)\n"
)


def test_pipeline_stores_line_timings_and_the_lrc_timing_difference(
    services: ServiceEndpoints, tmp_path: Path
) -> None:
    with psycopg.connect(services.database_url) as conn:
        conn.execute(f"TRUNCATE {APP_TABLES} CASCADE")  # noqa: S608 - fixed table list
    store = ObjectStore(services.s3_endpoint, services.s3_access_key, services.s3_secret_key,
                        bucket=f"sync-{uuid.uuid4().hex[:10]}")  # fmt: skip
    store.ensure_bucket()
    song = tmp_path / "ask not.wav"
    song.write_bytes(media.SPEECH_WAV.read_bytes())
    song.with_suffix(".lrc").write_text(REFERENCE)
    rows = process_paths([str(song)], store=store, database_url=services.database_url,
                         instance=dg.DagsterInstance.ephemeral(),
                         resources=definitions.build_resources(api_settings(services, store.bucket)), batch=1)  # fmt: skip
    assert rows[0]["stages"]["comparison"] == "done", rows
    with psycopg.connect(services.database_url) as conn:
        lrc, alignment = conn.execute(
            "SELECT synced_lrc, alignment FROM comparisons WHERE file_id = %s", (rows[0]["track_id"],)
        ).fetchone()
        details = conn.execute(
            "SELECT details FROM track_stages WHERE file_id = %s AND stage = 'comparison'",
            (rows[0]["track_id"],),
        ).fetchone()[0]
    lines, ours, theirs = alignment["lines"], parse_lrc(lrc), parse_lrc(REFERENCE)
    assert [entry["line"] for entry in lines] == [line for _, line in theirs]
    assert [round(entry["start"], 2) for entry in lines] == [round(t, 2) for t, _ in ours]
    for entry in lines:
        assert entry["estimated"] == (entry["method"] != "matched")
        assert 0.0 <= entry["confidence"] <= 1.0
    # clean speech: the three spoken lines are anchored on their words; the solo is only estimated
    assert [entry["method"] for entry in lines[:3]] == ["matched"] * 3
    assert lines[3]["estimated"] and lines[3]["confidence"] == 0.0 and lines[3]["matched_words"] == 0
    assert details["lines_estimated"] == 1
    # the stage's timing difference, recomputed here from the two LRCs
    diffs = sorted(abs(a - b) for (a, _), (b, _) in zip(ours, theirs, strict=True))
    timing = alignment["lrc_timing"]
    assert timing == details["lrc_timing"]
    assert (timing["lines"], timing["our_lines"], timing["reference_lines"]) == (4, 4, 4)
    assert timing["max_s"] == pytest.approx(diffs[-1], abs=1e-3)
    assert timing["median_s"] == pytest.approx((diffs[1] + diffs[2]) / 2, abs=1e-3)
    assert timing["max_s"] <= 1.0, (ours, theirs)  # each line within a second of where it is said
    assert all(normalise_words(a) == normalise_words(b) for (_, a), (_, b) in zip(ours, theirs, strict=True))
