"""Orphan sweep, duplicates and the cleanup Dagster jobs, schedules and command line."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from music_core.db.connection import connect
from music_core.embedded import ServiceEndpoints
from music_core.ingest import register_local_file
from music_core.naming import converted_key, original_key
from music_core.retention.duplicates import bit_error_rate, decode_fingerprint, perceptual_duplicates
from music_core.retention.orphans import find_orphans, repair_orphans, track_id_of_key
from music_core.retention.run import run_duplicates, run_orphan_sweep
from music_core.settings import Settings
from music_core.stages import prepare_audio, stage_context
from music_core.storage import ObjectStore
from music_pipeline.defs.partitions import tracks_partitions
from music_pipeline.defs.retention.jobs import duplicates_job, orphan_sweep_job, retention_job
from music_pipeline.defs.retention.schedules import build_schedules
from music_pipeline.defs.retention.storage_stats import storage_stats_job, storage_stats_snapshot
from tests import media
from tests.retention_library import MODEL, Library, build_library, object_digests

STRAY = "ab" + "0" * 62


@pytest.fixture
def library(store: ObjectStore, db_url: str, tmp_path: Path) -> Library:
    return build_library(store, db_url, tmp_path / "lib", old=2, young=2)


def _put(store: ObjectStore, key: str, data: bytes) -> None:
    store.put_stream(key, io.BytesIO(data), len(data), "application/octet-stream")


def test_track_id_of_key_only_accepts_our_layout() -> None:
    sha = "f" * 64
    assert track_id_of_key(f"originals/ff/{sha}") == sha
    assert track_id_of_key(f"converted/ff/{sha}.flac") == sha
    assert track_id_of_key(f"sidecars/ff/{sha}.lrc") == sha
    assert track_id_of_key(f"originals/ff/{sha}/../x") is None
    assert track_id_of_key("converted/notes.txt") is None


def test_orphan_sweep_previews_then_repairs_only_the_orphans(
    library: Library, store: ObjectStore, db_url: str
) -> None:
    _put(store, original_key(STRAY), b"left behind by a crashed upload")
    _put(store, "converted/junk.bin", b"x" * 10)
    broken = library.young[0]
    store.delete(converted_key(broken))
    with connect(db_url) as conn:  # rows gone behind the index's back
        conn.execute("DELETE FROM embeddings WHERE file_id = %s", (library.young[1],))
    orphans = {original_key(STRAY), "converted/junk.bin"}
    intact = {k: v for k, v in object_digests(store).items() if broken not in k and k not in orphans}

    preview = run_orphan_sweep(db_url, store, [*library.all, "f" * 64], execute=False, performed_by="t",
                               grace=dt.timedelta(0))  # fmt: skip
    assert preview.details["objects_without_row"] == 2
    assert preview.details["rows_without_converted"] == 1 and preview.details["missing_converted"] == [broken]
    assert preview.details["partitions"] == ["f" * 64]
    assert preview.details["index_vectors_without_row"] == {MODEL: 2}
    assert store.stat(original_key(STRAY)) is not None  # preview touched nothing

    forgotten: list[str] = []
    done = run_orphan_sweep(db_url, store, [*library.all, "f" * 64], execute=True, performed_by="t",
                            grace=dt.timedelta(0), forget=forgotten.extend)  # fmt: skip
    assert done.details["done"]["objects_deleted"] == 2 and forgotten == ["f" * 64]
    assert store.stat(original_key(STRAY)) is None and store.stat("converted/junk.bin") is None
    with connect(db_url) as conn:
        path, status = conn.execute(
            "SELECT f.converted_path, s.status FROM music_files f JOIN track_stages s ON s.file_id = f.id "
            "AND s.stage = 'converted_audio' WHERE f.id = %s",
            (broken,),
        ).fetchone()
    assert (path, status) == (None, "failed")
    after = object_digests(store)
    assert {k: after[k] for k in intact} == intact
    assert done.details["index_vectors_removed"] == {MODEL: 2}
    again = run_orphan_sweep(
        db_url, store, library.all, execute=False, performed_by="t", grace=dt.timedelta(0)
    )
    assert again.file_count == 0 and again.details["index_vectors_without_row"] == {MODEL: 0}


def test_objects_stored_again_after_the_listing_are_not_marked_missing(
    library: Library, store: ObjectStore, db_url: str
) -> None:
    track = library.young[0]
    saved = {key: b"".join(store.iter_chunks(key)) for key in (original_key(track), converted_key(track))}
    for key in saved:
        store.delete(key)
    with connect(db_url) as conn:
        report = find_orphans(conn, store, library.all, grace=dt.timedelta(0))
    assert report.rows_without_original == [track] and report.rows_without_converted == [track]
    for key, data in saved.items():  # a re-upload and a reprocess between listing and repair
        _put(store, key, data)

    done = repair_orphans(db_url, store, report)

    assert (done["originals_marked_missing"], done["converted_cleared"]) == (0, 0)
    with connect(db_url) as conn:
        removed_at, converted = conn.execute(
            "SELECT original_removed_at, converted_path FROM music_files WHERE id = %s", (track,)
        ).fetchone()
    assert removed_at is None and converted == converted_key(track)
    for key in saved:  # really missing: marked
        store.delete(key)
    assert repair_orphans(db_url, store, report) == {
        "objects_deleted": 0, "bytes_freed": 0, "originals_marked_missing": 1, "converted_cleared": 1,
    }  # fmt: skip


def test_young_objects_are_never_orphans(store: ObjectStore, db_url: str) -> None:
    _put(store, original_key(STRAY), b"a registration between copy and insert")
    outcome = run_orphan_sweep(db_url, store, [], execute=True, performed_by="t", grace=dt.timedelta(hours=1))
    assert outcome.file_count == 0 and store.stat(original_key(STRAY)) is not None


def test_bit_error_rate_tolerates_small_shifts() -> None:
    rng = np.random.default_rng(1)
    a = rng.integers(0, 2**32, 200, dtype=np.uint32)
    assert bit_error_rate(a, a) == 0.0
    assert bit_error_rate(a[2:], a) == 0.0  # two items of misalignment
    other = rng.integers(0, 2**32, 200, dtype=np.uint32)
    assert 0.4 < bit_error_rate(a, other) < 0.6
    assert decode_fingerprint("AAAAAAEAAAA=").tolist() == [0, 1]


def test_duplicates_reports_encodings_of_one_recording_and_merge_keeps_the_best(
    store: ObjectStore, db_url: str, tmp_path: Path
) -> None:
    flac = media.encode(tmp_path / "speech.flac")
    mp3 = media.encode(tmp_path / "speech.mp3")
    other = media.instrumental(tmp_path / "music.flac", 11)
    ids = {}
    for path, name in [(flac, "Album/speech.flac"), (mp3, "Phone/speech low.mp3"), (other, "music.flac")]:
        ids[path.suffix + path.stem] = register_local_file(store, db_url, path, name).track_id
    register_local_file(store, db_url, mp3, "Phone/copy of speech.mp3")  # exact duplicate: an alias
    register_local_file(store, db_url, flac, "Album/speech.flac")  # the same name again: no duplicate
    with stage_context(store, db_url, run_id="t", timeout_seconds=60, workers=2) as ctx:
        for track_id in ids.values():
            assert [o.status for o in prepare_audio(ctx, track_id)] == ["done", "done"]
    keep, drop = ids[".flacspeech"], ids[".mp3speech"]

    report = run_duplicates(db_url, store, merge=False, performed_by="t")
    assert [g["uploads"] for g in report.details["exact"]] == [2]
    [group] = report.details["perceptual"]
    assert group["keep"]["track_id"] == keep and [o["track_id"] for o in group["others"]] == [drop]
    assert group["max_bit_error_rate"] < 0.05
    assert store.stat(original_key(drop)) is not None

    merged = run_duplicates(db_url, store, merge=True, performed_by="t")
    assert merged.file_count == 1
    assert store.stat(original_key(drop)) is None and store.stat(original_key(keep)) is not None
    with connect(db_url) as conn:
        names = sorted(
            r[0] for r in conn.execute("SELECT original_name FROM file_aliases WHERE file_id = %s", (keep,))
        )
        assert conn.execute("SELECT count(*) FROM music_files WHERE id = %s", (drop,)).fetchone()[0] == 0
    assert names == ["Album/speech.flac", "Phone/copy of speech.mp3", "Phone/speech low.mp3"]


def test_a_chain_of_similar_tracks_is_not_one_recording(
    store: ObjectStore, db_url: str, tmp_path: Path
) -> None:
    """A~B and B~C (each pair within the threshold) while A and C are not: C is no copy of A, and a
    merge must never delete it as one. Fingerprints set directly, the rest through registration."""
    rng = np.random.default_rng(7)
    a = rng.integers(0, 2**32, 400, dtype=np.uint32)
    flips_ab = np.zeros(400 * 32, dtype=bool)
    flips_ab[rng.choice(400 * 32, int(400 * 32 * 0.07), replace=False)] = True
    b = a ^ np.packbits(flips_ab, bitorder="little").view(np.uint32)
    flips_bc = np.zeros(400 * 32, dtype=bool)
    flips_bc[
        np.flatnonzero(~flips_ab)[rng.choice(int((~flips_ab).sum()), int(400 * 32 * 0.07), replace=False)]
    ] = True
    c = b ^ np.packbits(flips_bc, bitorder="little").view(np.uint32)
    assert bit_error_rate(a, b) < 0.1 and bit_error_rate(b, c) < 0.1 and bit_error_rate(a, c) > 0.1

    ids = {}
    for name, fp, codec, bit_rate in [("a.flac", a, "flac", 900_000), ("b.mp3", b, "mp3", 320_000),
                                      ("c.mp3", c, "mp3", 128_000)]:  # fmt: skip
        path = tmp_path / name
        path.write_bytes(name.encode() * 100)  # distinct content; its audio facts are set below
        ids[name] = track = register_local_file(store, db_url, path, name).track_id
        with connect(db_url) as conn:
            conn.execute(
                "UPDATE music_files SET codec = %s, bit_rate = %s, duration = 30 WHERE id = %s",
                (codec, bit_rate, track),
            )
            conn.execute(
                "INSERT INTO fingerprints (file_id, algorithm, fingerprint) VALUES (%s, 'test', %s)",
                (track, base64.b64encode(fp.astype("<u4").tobytes()).decode()),
            )
    with connect(db_url) as conn:
        groups = perceptual_duplicates(conn)
    assert [(g.keep.track_id, [o.track_id for o in g.others]) for g in groups] == [
        (ids["a.flac"], [ids["b.mp3"]])
    ]
    assert groups[0].max_bit_error_rate == pytest.approx(bit_error_rate(a, b))


def test_retention_job_in_dagster_forgets_partitions_and_logs(
    library: Library, resources: dict[str, object], db_url: str
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(tracks_partitions.name, library.all)
    config = {"ops": {"apply_retention": {"config": {"mode": "execute", "older_than_days": 30}}}}
    result = retention_job.execute_in_process(run_config=config, resources=resources, instance=instance)
    assert result.success
    assert set(instance.get_dynamic_partitions(tracks_partitions.name)) == set(library.young)
    [materialization] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    metadata = materialization.event_specific_data.metadata
    assert metadata["items"].value == len(library.old) and metadata["mode"].text == "execute"
    with connect(db_url) as conn:
        assert (
            conn.execute("SELECT performed_by FROM cleanup_log").fetchone()[0].startswith("dagster:manual:")
        )

    with pytest.raises(dg.DagsterInvalidConfigError):
        retention_job.execute_in_process(
            run_config={"ops": {"apply_retention": {"config": {"mode": "delete-all"}}}},
            resources=resources, instance=instance,
        )  # fmt: skip


def test_other_cleanup_jobs_and_storage_snapshot_run_in_dagster(
    library: Library, resources: dict[str, object], db_url: str
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    assert orphan_sweep_job.execute_in_process(resources=resources, instance=instance).success
    assert duplicates_job.execute_in_process(resources=resources, instance=instance).success
    snap = dg.materialize([storage_stats_snapshot], resources=resources, instance=instance)
    assert snap.success
    with connect(db_url) as conn:
        stats = conn.execute("SELECT stats_data FROM storage_stats").fetchone()[0]
        actions = sorted(r[0] for r in conn.execute("SELECT action FROM cleanup_log WHERE dry_run"))
    assert actions == ["duplicates", "orphan_sweep"]
    assert stats["bucket"]["originals"]["objects"] == len(library.all)
    assert sum(g["tracks"] for g in stats["analytics"]["by_genre"]) == len(library.all)
    assert storage_stats_job.name == "storage_stats_job"


def _tick_config(schedule: dg.ScheduleDefinition) -> dict:
    [request] = schedule.evaluate_tick(dg.build_schedule_context()).run_requests
    return request.run_config


def test_schedules_preview_unless_execution_is_enabled() -> None:
    cautious = {s.name: s for s in build_schedules(Settings(_env_file=None, retention_days=30))}
    assert set(cautious) == {"retention_schedule", "orphan_sweep_schedule", "duplicates_schedule",
                             "storage_stats_schedule"}  # fmt: skip
    assert all(s.default_status == dg.DefaultScheduleStatus.RUNNING for s in cautious.values())
    config = _tick_config(cautious["retention_schedule"])["ops"]["apply_retention"]["config"]
    assert config == {"mode": "preview", "older_than_days": 30, "keep_originals": False}
    bold = {s.name: s for s in build_schedules(Settings(_env_file=None, retention_execute=True))}
    assert _tick_config(bold["retention_schedule"])["ops"]["apply_retention"]["config"]["mode"] == "execute"
    # merging duplicates removes copies: never from a schedule
    assert _tick_config(bold["duplicates_schedule"])["ops"]["find_duplicates"]["config"]["mode"] == "preview"


def test_cli_previews_and_executes_retention(
    library: Library, services: ServiceEndpoints, store: ObjectStore, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        **services.as_env(),
        "MUSIC_DATA_DIR": str(tmp_path / "data"),
        "MUSIC_BUCKET": store.bucket,
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "music_pipeline.cli", *args], env=env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip

    preview = cli("retention", "--older-than-days", "30", "--json")
    assert preview.returncode == 0, preview.stderr
    assert json.loads(preview.stdout)["file_count"] == len(library.old)
    assert all(store.stat(original_key(t)) is not None for t in library.old)
    done = cli("retention", "--older-than-days", "30", "--execute")
    assert done.returncode == 0, done.stderr
    assert f"removed {len(library.old)} item(s)" in done.stdout
    assert all(store.stat(original_key(t)) is None for t in library.old)
    orphans = cli("orphans", "--json")
    assert orphans.returncode == 0 and json.loads(orphans.stdout)["action"] == "orphan_sweep"
    dups = cli("duplicates", "--json")
    assert dups.returncode == 0 and json.loads(dups.stdout)["details"]["perceptual"] == []
