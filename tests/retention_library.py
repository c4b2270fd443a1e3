"""A small real library for cleanup tests: real audio through the real registration and FFmpeg
stages, plus transcription and vector rows, a FAISS index in the bucket, and a chosen age."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg

from music_core.db import analysis, tracks
from music_core.db.connection import connect
from music_core.index_sync import sync_index
from music_core.ingest import register_local_file
from music_core.stages import prepare_audio, stage_context
from music_core.storage import ObjectStore
from tests import media

MODEL = "test-model@1"
DIM = 8


@dataclass(frozen=True)
class Library:
    old: list[str]
    young: list[str]

    @property
    def all(self) -> list[str]:
        return self.old + self.young


def add_vectors(conn: psycopg.Connection, track_id: str, seed: int) -> None:
    vectors = np.random.default_rng(seed).normal(size=(2, DIM)).astype(np.float32)
    analysis.replace_embeddings(conn, track_id, "transcript", MODEL, ["a", "b"], vectors)
    conn.execute(
        "INSERT INTO transcriptions (file_id, transcription_text, model_id) VALUES (%s, %s, %s)",
        (track_id, f"words of track {seed}", "asr@1"),
    )
    for stage in ("transcription", "embedding"):
        tracks.set_stage(conn, track_id, stage, "done", run_id="setup")


def age_tracks(conn: psycopg.Connection, track_ids: list[str], days: int) -> None:
    conn.execute(
        "UPDATE music_files SET uploaded_at = now() - make_interval(days => %s) WHERE id = ANY(%s)",
        (days, track_ids),
    )
    conn.execute(
        "UPDATE file_aliases SET first_seen_at = now() - make_interval(days => %s), "
        "last_seen_at = now() - make_interval(days => %s) WHERE file_id = ANY(%s)",
        (days, days, track_ids),
    )


def build_library(store: ObjectStore, db_url: str, folder: Path, *, old: int = 3, young: int = 3) -> Library:
    folder.mkdir(parents=True, exist_ok=True)
    ids = []
    for i in range(old + young):
        genre = "Old" if i < old else "New"
        path = media.clip(folder / f"track {i}.flac", 2.0 + 0.5 * i)
        if i in (0, old):  # one sidecar on each side of the rule
            path.with_suffix(".lrc").write_text(f"[00:00.50] line of track {i}\n")
        ids.append(register_local_file(store, db_url, path, f"{genre}/track {i}.flac").track_id)
    with stage_context(store, db_url, run_id="setup", timeout_seconds=60, workers=2) as ctx:
        for track_id in ids:
            assert [o.status for o in prepare_audio(ctx, track_id)] == ["done", "done"]
    with connect(db_url) as conn:
        for i, track_id in enumerate(ids):
            add_vectors(conn, track_id, i)
        age_tracks(conn, ids[:old], 100)
        conn.commit()
        sync_index(store, conn, MODEL)
    return Library(ids[:old], ids[old:])


def object_digests(
    store: ObjectStore, prefixes: tuple[str, ...] = ("originals/", "converted/", "sidecars/")
) -> dict[str, str]:
    out = {}
    for prefix in prefixes:
        for obj in store.list(prefix):
            out[obj.key] = hashlib.sha256(b"".join(store.iter_chunks(obj.key))).hexdigest()
    return out


def rows_of(db_url: str, track_ids: list[str]) -> dict[str, list]:
    """Every application row that belongs to these tracks, for byte-for-byte comparisons."""
    tables = {
        "music_files": "SELECT * FROM music_files WHERE id = ANY(%s) ORDER BY id",
        "file_aliases": "SELECT * FROM file_aliases WHERE file_id = ANY(%s) ORDER BY id",
        "track_stages": "SELECT * FROM track_stages WHERE file_id = ANY(%s) ORDER BY file_id, stage",
        "fingerprints": "SELECT * FROM fingerprints WHERE file_id = ANY(%s) ORDER BY file_id",
        "transcriptions": "SELECT * FROM transcriptions WHERE file_id = ANY(%s) ORDER BY file_id",
        "embeddings": "SELECT id, file_id, source, chunk, model_id, embedding::text FROM embeddings "
        "WHERE file_id = ANY(%s) ORDER BY id",
    }
    with connect(db_url) as conn:
        return {name: conn.execute(sql, (track_ids,)).fetchall() for name, sql in tables.items()}
