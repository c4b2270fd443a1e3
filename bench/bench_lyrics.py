"""Lyrics benchmark on SYNTHETIC songs: real speech lines from ../shared/dev-audio mixed over its
instrumental track at known offsets, the lines' texts given as a sidecar. Prints the generated LRC's
line-start error (median, p90) and the comparison WER. JSON out.

Line starts are measured against the offset where each clip was placed; clips begin with a little
silence, so part of the error is that lead-in, not the aligner."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import SHARED_AUDIO, dev_audio_manifest, pipeline_services

from music_core.audio.convert import ffmpeg_exe
from music_core.lyrics.lrc import parse_lrc

LINES_PER_SONG = 4
GAP = 9.0  # seconds between line starts
MUSIC_GAIN = 0.35  # instrumental about 9 dB below the voice


def build_song(dest: Path, clips: list[dict], instrumental: Path) -> list[float]:
    offsets = [2.0 + i * GAP for i in range(len(clips))]
    inputs = ["-i", str(instrumental)]
    chains = [f"[0:a]aresample=16000,pan=mono|c0=0.5*c0+0.5*c1,volume={MUSIC_GAIN}[m]"]
    for i, (clip, offset) in enumerate(zip(clips, offsets, strict=True), start=1):
        inputs += ["-i", str(SHARED_AUDIO / clip["file"])]
        ms = int(offset * 1000)
        chains.append(f"[{i}:a]aresample=16000,pan=mono|c0=c0,adelay={ms}[v{i}]")
    mix = "".join(f"[v{i}]" for i in range(1, len(clips) + 1))
    chains.append(f"[m]{mix}amix=inputs={len(clips) + 1}:duration=first:normalize=0[out]")
    duration = offsets[-1] + GAP
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", *inputs, "-filter_complex", ";".join(chains), "-map", "[out]",
         "-t", str(duration), "-c:a", "flac", str(dest)],
        check=True,
    )  # fmt: skip
    return offsets


def main() -> int:
    manifest = dev_audio_manifest()
    if manifest is None:
        print(json.dumps({"benchmark": "lyrics", "skipped": "../shared/dev-audio is absent"}))
        return 0
    clips = [e for e in manifest if e["kind"] == "speech" and e["language"] == "en" and e["reference_text"]
             and 1.0 <= e["duration_s"] <= GAP - 1.0]  # fmt: skip
    instrumental = next(SHARED_AUDIO / e["file"] for e in manifest if e["kind"] == "instrumental")
    songs = [clips[i : i + LINES_PER_SONG] for i in range(0, len(clips) - LINES_PER_SONG + 1, LINES_PER_SONG)]
    import psycopg

    from music_pipeline.oneshot import process_paths

    with tempfile.TemporaryDirectory(prefix="bench-lyrics-") as tmp:
        root = Path(tmp)
        expected: dict[str, list[float]] = {}
        for n, song in enumerate(songs):
            path = root / "songs" / f"synthetic_{n:02d}.flac"
            path.parent.mkdir(exist_ok=True)
            expected[str(path)] = build_song(path, song, instrumental)
            path.with_suffix(".txt").write_text("\n".join(c["reference_text"] for c in song) + "\n")
        with pipeline_services(root / "data") as (_, ep, store, instance, resources):
            rows = process_paths(list(expected), store=store, database_url=ep.database_url, instance=instance,
                                 resources=resources, batch=len(expected))  # fmt: skip
            with psycopg.connect(ep.database_url) as conn:
                lrc = dict(conn.execute("SELECT file_id, synced_lrc FROM comparisons").fetchall())
                wers = [r[0] for r in conn.execute("SELECT wer FROM comparisons").fetchall()]
    errors = []
    for row in rows:
        timed = parse_lrc(lrc.get(row["track_id"]) or "")
        for (start, _), want in zip(timed, expected[row["file"]], strict=False):
            errors.append(abs(start - want))
    errors.sort()
    print(json.dumps({
        "benchmark": "lyrics",
        "synthetic": True,
        "songs": len(songs),
        "lines": len(errors),
        "line_start_error_median_s": round(statistics.median(errors), 3) if errors else None,
        "line_start_error_p90_s": round(errors[int(0.9 * (len(errors) - 1))], 3) if errors else None,
        "target_median_s": 0.5,
        "comparison_wer_mean": round(statistics.mean(wers), 4) if wers else None,
        "lyrics_sources": sorted({r["lyrics_source"] or "none" for r in rows}),
    }, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
