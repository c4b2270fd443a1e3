"""SIGKILL a retention run midway; the rerun's end state equals an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from music_core.db.connection import connect
from music_core.embedded import ServiceEndpoints
from music_core.ingest import register_local_file
from music_core.naming import converted_key
from music_core.retention.rules import RetentionRule
from music_core.retention.run import run_retention
from music_core.storage import ObjectStore
from tests.retention_library import age_tracks, object_digests, rows_of

OLD, YOUNG = 120, 20

RUNNER = """
import sys
from music_core.retention.rules import RetentionRule
from music_core.retention.run import run_retention
from music_core.storage import ObjectStore
db, endpoint, access, secret, bucket = sys.argv[1:6]
store = ObjectStore(endpoint, access, secret, bucket=bucket)
print("start", flush=True)
run_retention(db, store, RetentionRule(30), execute=True, performed_by="doomed run")
print("finished", flush=True)
"""


def _synthetic_library(store: ObjectStore, db_url: str, folder: Path) -> tuple[list[str], list[str]]:
    folder.mkdir()
    ids = []
    for i in range(OLD + YOUNG):
        path = folder / f"{i}.mp3"
        path.write_bytes(os.urandom(2048) + str(i).encode())
        track_id = register_local_file(store, db_url, path, f"track {i}.mp3").track_id
        store.put_file(converted_key(track_id), path, "audio/flac")
        ids.append(track_id)
    with connect(db_url) as conn:
        conn.execute(
            "UPDATE music_files SET converted_path = 'converted/' || substr(id, 1, 2) || '/' || id || '.flac',"
            " converted_size = 2050 WHERE id = ANY(%s)",
            (ids,),
        )
        age_tracks(conn, ids[:OLD], 90)
    return ids[:OLD], ids[OLD:]


def _rows_point_to_objects(store: ObjectStore, db_url: str) -> list[str]:
    """Tracks with no pending removal whose row names an object that is missing."""
    present = set(object_digests(store))
    with connect(db_url) as conn:
        rows = conn.execute(
            "SELECT id, storage_path, converted_path FROM music_files f "
            "WHERE NOT EXISTS (SELECT 1 FROM removal_intents i WHERE i.file_id = f.id)"
        ).fetchall()
    return [r[0] for r in rows if r[1] not in present or (r[2] and r[2] not in present)]


def test_sigkill_midway_then_rerun_equals_an_uninterrupted_run(
    services: ServiceEndpoints, store: ObjectStore, db_url: str, tmp_path: Path
) -> None:
    old, young = _synthetic_library(store, db_url, tmp_path / "lib")
    young_objects = {k: v for k, v in object_digests(store).items() if any(t in k for t in young)}
    young_rows = rows_of(db_url, young)

    args = [db_url, services.s3_endpoint, services.s3_access_key, services.s3_secret_key, store.bucket]
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, *args], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "start"
    deadline = time.monotonic() + 120
    remaining = OLD
    while time.monotonic() < deadline:
        with connect(db_url) as conn:
            remaining = conn.execute(
                "SELECT count(*) FROM music_files WHERE id = ANY(%s)", (old,)
            ).fetchone()[0]
        if remaining <= OLD - 10:
            break
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert 0 < remaining < OLD, "the kill must land in the middle of the run"

    assert _rows_point_to_objects(store, db_url) == []  # only tracks with a recorded intent may be half done

    outcome = run_retention(db_url, store, RetentionRule(30), execute=True, performed_by="rerun")

    with connect(db_url) as conn:
        left = conn.execute("SELECT count(*) FROM music_files WHERE id = ANY(%s)", (old,)).fetchone()[0]
        intents = conn.execute("SELECT count(*) FROM removal_intents").fetchone()[0]
        logs = conn.execute("SELECT performed_by FROM cleanup_log ORDER BY performed_at").fetchall()
    assert (left, intents) == (0, 0)
    assert outcome.file_count + len(outcome.details["resumed_interrupted"]) >= 1
    assert not [k for k in object_digests(store) if any(t in k for t in old)]
    assert {k: v for k, v in object_digests(store).items() if any(t in k for t in young)} == young_objects
    assert rows_of(db_url, young) == young_rows
    assert ("rerun",) in logs
