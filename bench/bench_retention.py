"""Retention at library scale: 10k synthetic tracks (rows, small objects, vectors), a rule selecting
20%, preview then execute; prints times and proves the other 80% untouched (etags and row digests).

    make bench-retention            # 10k tracks
    make bench-retention BENCH_ARGS="--tracks 2000"
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from common import pipeline_services  # noqa: I001 - sets sys.path for the project imports

from music_core.db import analysis
from music_core.db.connection import connect
from music_core.index_sync import sync_index
from music_core.naming import converted_key, original_key
from music_core.retention.rules import RetentionRule
from music_core.retention.run import run_retention

MODEL = "bench-model@1"
DIM = 384


def make_library(ep, store, count: int, old_share: float) -> tuple[list[str], list[str]]:  # noqa: ANN001
    rng = np.random.default_rng(7)
    ids = [hashlib.sha256(f"bench track {i}".encode()).hexdigest() for i in range(count)]
    n_old = int(count * old_share)
    with connect(ep.database_url) as conn:
        with conn.cursor().copy(
            "COPY music_files (id, original_filename, storage_path, file_size, converted_path, converted_size,"
            " genre, duration, uploaded_at) FROM STDIN"
        ) as copy:
            for i, track_id in enumerate(ids):
                copy.write_row((track_id, f"Genre {i % 7}/track {i}.mp3", original_key(track_id), 512,
                                converted_key(track_id), 256, f"Genre {i % 7}", 180.0, "now"))  # fmt: skip
        conn.execute(
            "UPDATE music_files SET uploaded_at = now() - interval '100 days' WHERE id = ANY(%s)",
            (ids[:n_old],),
        )
        with conn.cursor().copy("COPY file_aliases (file_id, original_name, object_key) FROM STDIN") as copy:
            for i, track_id in enumerate(ids):
                copy.write_row((track_id, f"Genre {i % 7}/track {i}.mp3", f"inbox/track {i}.mp3"))
        conn.execute(
            "UPDATE file_aliases SET first_seen_at = now() - interval '100 days', "
            "last_seen_at = now() - interval '100 days' WHERE file_id = ANY(%s)",
            (ids[:n_old],),
        )
        vectors = rng.normal(size=(count, DIM)).astype(np.float32)
        for start in range(0, count, 1000):
            for j, track_id in enumerate(ids[start : start + 1000]):
                analysis.replace_embeddings(
                    conn, track_id, "transcript", MODEL, ["text"], vectors[start + j : start + j + 1]
                )
            conn.commit()

    def put(track_id: str) -> None:
        for key, size in ((original_key(track_id), 512), (converted_key(track_id), 256)):
            data = hashlib.sha256(key.encode()).digest() * (size // 32)
            store.put_stream(key, io.BytesIO(data), len(data), "application/octet-stream")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, ids))
    with connect(ep.database_url) as conn:
        sync_index(store, conn, MODEL)
    return ids[:n_old], ids[n_old:]


def fingerprint_young(ep, store, young: list[str]) -> tuple[str, str]:  # noqa: ANN001
    """(digest of the young tracks' objects by key+etag+size, digest of their rows)."""
    wanted = set(young)
    objects = sorted(
        f"{o.key}:{o.etag}:{o.size}"
        for prefix in ("originals/", "converted/")
        for o in store.list(prefix)
        if o.key.split("/")[2][:64] in wanted
    )
    with connect(ep.database_url) as conn:
        rows = conn.execute(
            "SELECT md5(string_agg(f::text, '|' ORDER BY f.id)) || md5(string_agg(e.embedding::text, '|' ORDER BY e.id))"
            " FROM music_files f JOIN embeddings e ON e.file_id = f.id WHERE f.id = ANY(%s)",
            (young,),
        ).fetchone()[0]
    return hashlib.sha256("\n".join(objects).encode()).hexdigest(), rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tracks", type=int, default=10_000)
    parser.add_argument("--share", type=float, default=0.2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-retention-") as tmp:
        overrides = {"embedded_s3_port": 29333, "embedded_redis_port": 29390}
        with pipeline_services(Path(tmp), **overrides) as (_settings, ep, store, _instance, _resources):
            t0 = time.perf_counter()
            old, young = make_library(ep, store, args.tracks, args.share)
            setup = time.perf_counter() - t0
            before = fingerprint_young(ep, store, young)

            t0 = time.perf_counter()
            preview = run_retention(
                ep.database_url, store, RetentionRule(30), execute=False, performed_by="bench"
            )
            preview_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            done = run_retention(
                ep.database_url, store, RetentionRule(30), execute=True, performed_by="bench"
            )
            execute_s = time.perf_counter() - t0

            after = fingerprint_young(ep, store, young)
            with connect(ep.database_url) as conn:
                left_rows = conn.execute(
                    "SELECT count(*) FROM music_files WHERE id = ANY(%s)", (old,)
                ).fetchone()[0]
                vectors = conn.execute("SELECT count(*) FROM embeddings").fetchone()[0]
            left_objects = sum(1 for p in ("originals/", "converted/") for o in store.list(p)
                               if o.key.split("/")[2][:64] in set(old))  # fmt: skip
            print(json.dumps({
                "benchmark": "retention", "tracks": args.tracks, "selected": len(old),
                "setup_seconds": round(setup, 1),
                "preview": {"seconds": round(preview_s, 2), "tracks": preview.file_count, "bytes": preview.bytes},
                "execute": {"seconds": round(execute_s, 2), "tracks": done.file_count, "bytes": done.bytes,
                            "tracks_per_second": round(done.file_count / execute_s, 1)},
                "removed_everywhere": left_rows == 0 and left_objects == 0,
                "untouched_80_percent_identical": before == after,
                "vectors_left": vectors, "index_vectors_removed": done.details.get("index_vectors_removed"),
                "cpu_count": os.cpu_count(), "loadavg": os.getloadavg(),
            }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
