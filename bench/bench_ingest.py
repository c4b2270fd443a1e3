"""Ingest benchmark: N files (~30 s each, mixed formats) through registration, probe and conversion,
against raw FFmpeg 16 kHz mono conversion of the same files with the same parallelism (the plain
command, and one with the pipeline's FLAC output).

Prints one JSON object. Reads ../shared/dev-audio when present (says so when it is not) and falls
back to the demo audio in this repository.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from common import REPO, named_cpu_seconds, pipeline_services

from music_core.audio.convert import FLAC_BLOCK_SAMPLES, ffmpeg_exe

FORMATS = {
    "mp3": ["-c:a", "libmp3lame", "-b:a", "128k"],
    "ogg": ["-c:a", "libvorbis", "-q:a", "4"],
    "opus": ["-c:a", "libopus", "-b:a", "64k"],
    "m4a": ["-c:a", "aac", "-b:a", "128k"],
    "flac": ["-c:a", "flac"],
    "wav": ["-c:a", "pcm_s16le"],
}


def source_audio() -> tuple[list[Path], str]:
    shared = REPO.parent / "shared" / "dev-audio" / "speech" / "en"
    if shared.is_dir():
        return sorted(shared.glob("*.wav")), str(shared)
    print("note: ../shared/dev-audio is absent; using the repository's demo audio", file=sys.stderr)
    return sorted((REPO / "demo").glob("*.wav")), "demo/"


def build_inputs(folder: Path, count: int, seconds: float) -> list[Path]:
    sources, _ = source_audio()
    looped = []
    for j, src in enumerate(sources[:8]):
        # Looped speech at 44.1 kHz stereo, like music files.
        dest = folder / f"source{j}.wav"
        subprocess.run(
            [ffmpeg_exe(), "-v", "error", "-y", "-stream_loop", "-1", "-i", str(src), "-t", str(seconds),
             "-ar", "44100", "-ac", "2", str(dest)],
            check=True,
        )  # fmt: skip
        looped.append(dest)
    files = []
    for i in range(count):
        ext = list(FORMATS)[i % len(FORMATS)]
        dest = folder / f"track{i:04d}.{ext}"
        # A per-file gain makes every file unique content (no deduplication shortcut).
        subprocess.run(
            [ffmpeg_exe(), "-v", "error", "-y", "-i", str(looped[i % len(looped)]),
             "-af", f"volume={0.5 + i / (count * 4):.5f}", "-ar", "48000" if ext == "opus" else "44100",
             *FORMATS[ext], str(dest)],
            check=True,
        )  # fmt: skip
        files.append(dest)
    for path in looped:
        path.unlink()
    return files


# The baseline: the plain FFmpeg command. FFmpeg picks 24-bit FLAC (from float decoders) and
# blocks of the decoder's frame size (193-1470 samples) for it.
RAW_ARGS = ["-ac", "1", "-ar", "16000", "-c:a", "flac"]
# The same output as the pipeline's FLAC (16-bit, 4096-sample blocks), without the fingerprint,
# probe, uploads or database: what the pipeline adds over conversion alone.
SAME_OUTPUT_ARGS = [
    "-af", f"aresample=16000,aformat=sample_fmts=s16:channel_layouts=mono,asetnsamples=n={FLAC_BLOCK_SAMPLES}:p=0",
    "-c:a", "flac",
]  # fmt: skip


def raw_conversion(files: list[Path], out: Path, workers: int, args: list[str]) -> tuple[float, float]:
    def one(path: Path) -> None:
        subprocess.run(
            [ffmpeg_exe(), "-v", "error", "-y", "-i", str(path), *args, str(out / (path.stem + ".flac"))],
            check=True,
        )  # fmt: skip

    start, cpu = time.perf_counter(), os.times()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, files))
    spent = os.times()
    return (
        time.perf_counter() - start,
        spent.children_user + spent.children_system - cpu.children_user - cpu.children_system,
    )


def cpu_snapshot() -> dict[str, float]:
    """CPU seconds so far, by who spent them: this process (Dagster, stage code, PyAV probe, clients),
    finished subprocesses (FFmpeg), the S3 server and PostgreSQL (live processes)."""
    own = os.times()
    return {
        "python": own.user + own.system,
        "ffmpeg": own.children_user + own.children_system,
        "s3_server": named_cpu_seconds("weed"),
        "postgres": named_cpu_seconds("postgres"),
    }


def pipeline_run(files: list[Path], data: Path, workers: int) -> tuple[dict[str, Any], dict[str, int]]:
    from music_pipeline.oneshot import process_paths

    with pipeline_services(data, workers=workers, tracks_per_run=len(files)) as (
        _,
        ep,
        store,
        instance,
        resources,
    ):
        before, started = cpu_snapshot(), time.time()
        rows = process_paths([str(f) for f in files], store=store, database_url=ep.database_url,
                             instance=instance, resources=resources, batch=len(files), workers=workers,
                             until_stage="converted_audio")  # ingest stages only  # fmt: skip
        finished, after = time.time(), cpu_snapshot()
        runs = [instance.get_run_stats(r.run_id) for r in instance.get_runs()]
    stage_start = min(r.start_time for r in runs if r.start_time)
    states: dict[str, int] = {}
    for row in rows:
        key = row["stages"]["converted_audio"]
        states[key] = states.get(key, 0) + 1
    timing = {
        "pipeline_s": finished - started,
        # Hashing and storing the originals, then launching the run; the stages run in the rest.
        "registration_s": stage_start - started,
        "stage_runs": len(runs),
        "cpu_s": {k: round(after[k] - before[k], 2) for k in after},
    }
    return timing, states


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    _, source = source_audio()
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        (root / "raw").mkdir()
        t0 = time.perf_counter()
        files = build_inputs(root / "in", args.files, args.seconds)
        build_time = time.perf_counter() - t0
        raw, raw_cpu = raw_conversion(files, root / "raw", args.workers, RAW_ARGS)
        same, same_cpu = raw_conversion(files, root / "raw", args.workers, SAME_OUTPUT_ARGS)
        timing, states = pipeline_run(files, root / "data", args.workers)
    pipeline = timing["pipeline_s"]
    print(json.dumps({
        "benchmark": "ingest",
        "files": args.files,
        "seconds_per_file": args.seconds,
        "formats": list(FORMATS),
        "source_audio": source,
        "workers": args.workers,
        "input_build_s": round(build_time, 2),
        "raw_ffmpeg_s": round(raw, 2),
        "raw_ffmpeg_cpu_s": round(raw_cpu, 2),
        "pipeline_s": round(pipeline, 2),
        "ratio_pipeline_over_raw": round(pipeline / raw, 3),
        "same_output_ffmpeg_s": round(same, 2),
        "same_output_ffmpeg_cpu_s": round(same_cpu, 2),
        "ratio_pipeline_over_same_output": round(pipeline / same, 3),
        "pipeline_registration_s": round(timing["registration_s"], 2),
        "pipeline_stage_runs": timing["stage_runs"],
        "pipeline_cpu_s": timing["cpu_s"],
        "target_ratio": 1.5,
        "converted_states": states,
        "peak_rss_mb_self": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_mb_largest_child": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
    }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
