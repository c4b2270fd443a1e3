"""The console script as a user runs it (subprocesses), against the session's services."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from pydantic import SecretStr

from music_core import provider_keys
from music_core.embedded import ServiceEndpoints
from music_core.storage import ObjectStore
from tests import media

STAGES = {"audio_file", "converted_audio", "transcription", "embedding", "lyrics", "comparison"}
JFK_LRC = """[ar:John F. Kennedy]
[00:00.00] And so, my fellow Americans,
[00:03.50] ask not what your country can do for you,
[00:07.50] ask what you can do for your country.
"""
ALL_DONE = dict.fromkeys(STAGES, "done")
ALL_SKIPPED = dict.fromkeys(STAGES, "skipped")


@pytest.fixture
def cli_env(services: ServiceEndpoints, store: ObjectStore, db_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        **services.as_env(),
        "MUSIC_DATA_DIR": str(tmp_path / "data"),
        "MUSIC_BUCKET": store.bucket,
    }


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "music_pipeline.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_process_reports_every_input_file_as_json(cli_env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "music"
    (folder / "Jazz").mkdir(parents=True)
    media.encode(folder / "Jazz" / "ask not (live) ünï.opus")
    (folder / "Jazz" / "ask not (live) ünï.lrc").write_text(JFK_LRC)  # a sidecar travels with its audio
    (folder / "dup one.wav").write_bytes(media.SPEECH_WAV.read_bytes())
    (folder / "dup 'two'.wav").write_bytes(media.SPEECH_WAV.read_bytes())
    long_name = folder / ("L" * 240 + ".wav")
    long_name.write_bytes(media.SPEECH_WAV.read_bytes())
    bad = media.bad_inputs(tmp_path / "bad")

    proc = cli(cli_env, "process", str(folder), str(bad["text_as_mp3"]), str(bad["empty"]),
               str(tmp_path / "missing.mp3"), "--json")  # fmt: skip

    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "DEBUG" not in proc.stderr and "STEP_START" not in proc.stderr  # Dagster quiet without -v
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    by_name = {Path(r["file"]).name: r for r in rows}
    assert len(rows) == 7
    for row in rows:
        assert set(row) >= {"file", "track_id", "duplicate_of", "stages", "error", "transcript"}
        assert set(row["stages"]) == STAGES
    opus = by_name["ask not (live) ünï.opus"]
    assert opus["stages"] == ALL_DONE and opus["error"] is None and opus["notes"] == {}
    assert "what your country can do for you" in opus["transcript"].lower()
    assert opus["lyrics_source"] == "sidecar" and opus["similarity"] > 80
    dups = [by_name["dup one.wav"], by_name["dup 'two'.wav"], by_name[long_name.name]]
    assert len({d["track_id"] for d in dups}) == 1
    assert sum(d["duplicate_of"] is None for d in dups) == 1
    assert by_name["notes.mp3"]["stages"]["audio_file"] == "failed"
    assert by_name["notes.mp3"]["error"].startswith("audio_file: not a readable")
    assert by_name["notes.mp3"]["notes"]["converted_audio"] == "audio_file is failed"
    assert by_name["empty.mp3"]["error"] == "audio_file: empty file (0 bytes)"
    assert by_name["missing.mp3"] == {
        "file": str(tmp_path / "missing.mp3"), "track_id": None, "duplicate_of": None,
        "stages": ALL_SKIPPED, "notes": {}, "error": "no such file or directory", "transcript": None,
        "lyrics_source": None, "similarity": None,
    }  # fmt: skip

    # Running it again reprocesses nothing that is done and duplicates nothing.
    again = cli(cli_env, "process", str(folder), "--json")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "STEP_START" not in again.stderr
    status = cli(cli_env, "status", "--json")
    known = [json.loads(line) for line in status.stdout.splitlines()]
    assert len(known) == 4  # opus, the wav content, and the two bad files
    wav = next(k for k in known if k["track_id"] == dups[0]["track_id"])
    assert len(wav["aliases"]) == 3

    # Reprocess one genre from the transcription stage on (what an operator does after a model change).
    again = cli(cli_env, "reprocess", "--genre", "jazz", "--stage", "transcription", "--json")
    assert again.returncode == 0, again.stderr[-2000:]
    redone = [json.loads(line) for line in again.stdout.splitlines()]
    assert [r["track_id"] for r in redone] == [opus["track_id"]]
    with psycopg.connect(cli_env["MUSIC_DATABASE_URL"]) as conn:
        attempts = dict(
            conn.execute(
                "SELECT stage, attempts FROM track_stages WHERE file_id = %s", (opus["track_id"],)
            ).fetchall()
        )
    assert attempts == {
        "audio_file": 1, "converted_audio": 1, "transcription": 2, "embedding": 2, "lyrics": 2, "comparison": 2,
    }  # fmt: skip
    # One track, named by a unique prefix of its id, from its last stage only.
    single = cli(cli_env, "reprocess", opus["track_id"][:10], "--stage", "comparison", "--json")
    assert single.returncode == 0, single.stderr[-2000:]
    assert [json.loads(line)["track_id"] for line in single.stdout.splitlines()] == [opus["track_id"]]
    with psycopg.connect(cli_env["MUSIC_DATABASE_URL"]) as conn:
        comparison_attempts = conn.execute(
            "SELECT attempts FROM track_stages WHERE file_id = %s AND stage = 'comparison'",
            (opus["track_id"],),
        ).fetchone()[0]
    assert comparison_attempts == 3
    assert cli(cli_env, "reprocess", "--all", "--stage", "nope").returncode == 2
    assert cli(cli_env, "reprocess").returncode == 2
    # A prefix too short or not hex would match many tracks (LIKE "_%" matched all): refused.
    for vague in ("", "_", "%", opus["track_id"][:1], "not-hex-at-all"):
        refused = cli(cli_env, "reprocess", vague, "--stage", "comparison")
        assert refused.returncode == 2 and "unique prefix of at least 6 hex" in refused.stderr
    unknown = cli(cli_env, "reprocess", "0" * 12, "--stage", "comparison")
    assert unknown.returncode == 2 and "no track matches" in unknown.stderr
    with psycopg.connect(cli_env["MUSIC_DATABASE_URL"]) as conn:
        assert (
            conn.execute(
                "SELECT attempts FROM track_stages WHERE file_id = %s AND stage = 'comparison'",
                (opus["track_id"],),
            ).fetchone()[0]
            == comparison_attempts
        )  # none of them ran anything
    for days in ("-5", "nan", "inf", "1e10"):
        bad = cli(cli_env, "retention", "--older-than-days", days)
        assert bad.returncode == 2 and bad.stderr.startswith("retention: older_than_days must be between")
    assert cli(cli_env, "retention", "--older-than-days", "1", "--limit", "-1").stderr == (
        "retention: limit must be >= 1\n"
    )


def test_ingest_uploads_to_the_inbox(cli_env: dict[str, str], store: ObjectStore, tmp_path: Path) -> None:
    folder = tmp_path / "Pop"
    folder.mkdir()
    (folder / "a song.mp3").write_bytes(media.SPEECH_MP3.read_bytes())
    proc = cli(cli_env, "ingest", str(tmp_path), str(tmp_path / "nope.mp3"))
    assert proc.returncode == 1  # one path was unusable, and said so
    assert "nope.mp3: no such file or directory" in proc.stderr
    keys = [o.key for o in store.list("inbox/")]
    assert keys == ["inbox/Pop/a song.mp3"]
    assert store.stat(keys[0]).metadata["original-name"] == "Pop/a song.mp3"  # type: ignore[union-attr]


def test_migrate_is_idempotent(cli_env: dict[str, str]) -> None:
    proc = cli(cli_env, "migrate")
    assert proc.returncode == 0
    assert "nothing (up to date)" in proc.stdout


def test_process_can_stop_after_a_stage(cli_env: dict[str, str], tmp_path: Path) -> None:
    song = tmp_path / "only ingest.mp3"
    song.write_bytes(media.SPEECH_MP3.read_bytes())
    proc = cli(cli_env, "process", str(song), "--until", "converted_audio", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = json.loads(proc.stdout)
    assert row["stages"] == {"audio_file": "done", "converted_audio": "done", "transcription": "skipped",
                             "embedding": "skipped", "lyrics": "skipped", "comparison": "skipped"}  # fmt: skip
    assert row["transcript"] is None
    assert cli(cli_env, "process", str(song), "--until", "nope").returncode == 2


def test_credential_helpers() -> None:
    from music_core.passwords import hash_key, verify_password

    env = {k: v for k, v in os.environ.items() if not k.startswith("MUSIC_")}
    made = subprocess.run(
        [sys.executable, "-m", "music_pipeline.cli", "hash-password", "alice", "--role", "admin"],
        input="long enough secret\n", capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    name, role, stored = made.stdout.strip().split(":", 2)
    assert (name, role) == ("alice", "admin") and verify_password("long enough secret", stored)
    short = subprocess.run([sys.executable, "-m", "music_pipeline.cli", "hash-password", "bob"], input="short\n",
                           capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert short.returncode == 2
    key = subprocess.run([sys.executable, "-m", "music_pipeline.cli", "new-api-key", "ci"], capture_output=True,
                         text=True, env=env, timeout=60).stdout.splitlines()  # fmt: skip
    secret = key[0].split(": ", 1)[1]
    assert key[1].endswith(f"ci:reader:{hash_key(secret)}")


def test_provider_keys_from_the_command_line_use_the_data_dirs_secret(cli_env: dict[str, str]) -> None:
    """A default setup has no MUSIC_SECRET_KEY in the environment: `up` generates one into the data
    dir, and the command line must use the same one (to store keys, and to read those the web page
    stored)."""
    env = {k: v for k, v in cli_env.items() if k not in ("MUSIC_SECRET_KEY", "MUSIC_API_TOKEN")}
    stored = subprocess.run(
        [sys.executable, "-m", "music_pipeline.cli", "provider-key", "set", "genius"],
        env=env, input="genius-token-0123456789\n", capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert stored.returncode == 0, stored.stderr
    listed = [json.loads(line) for line in cli(env, "provider-key", "list").stdout.splitlines()]
    genius = next(row for row in listed if row["provider"] == "genius")
    assert (genius["source"], genius["encrypted"], genius["problem"]) == ("api_config", True, None)
    secret = json.loads((Path(env["MUSIC_DATA_DIR"]) / "secrets.json").read_text())["secret_key"]
    with psycopg.connect(env["MUSIC_DATABASE_URL"]) as conn:
        key = provider_keys.stored_key(conn, "genius", SecretStr(secret))
    assert key is not None and key.get_secret_value() == "genius-token-0123456789"
