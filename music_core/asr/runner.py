"""Run a backend over a whole file, chunk by chunk, and assemble one Transcript."""

from __future__ import annotations

import time

import numpy as np

from music_core.asr.chunks import SAMPLE_RATE, iter_chunks
from music_core.asr.types import Segment, Transcriber, Transcript, Word

# Ten minutes of float32 at 16 kHz is 38 MB: a one-hour file never needs more than that at once.
DEFAULT_CHUNK_SECONDS = 600.0
MIN_AUDIO_SECONDS = 0.1


def _shift(segment: Segment, offset: float) -> Segment:
    words = tuple(Word(w.start + offset, w.end + offset, w.word, w.probability) for w in segment.words)
    return Segment(segment.start + offset, segment.end + offset, segment.text, segment.confidence, words)


def transcribe_source(
    transcriber: Transcriber, source: str, chunk_seconds: float = DEFAULT_CHUNK_SECONDS
) -> Transcript:
    started = time.perf_counter()
    segments: list[Segment] = []
    languages: list[str] = []
    offset = 0.0
    for chunk in iter_chunks(source, chunk_seconds):
        duration = chunk.shape[0] / SAMPLE_RATE
        if duration >= MIN_AUDIO_SECONDS and float(np.max(np.abs(chunk))) > 0:
            result = transcriber.transcribe_chunk(chunk)
            segments += [_shift(s, offset) for s in result.segments]
            if result.language and result.segments:
                languages.append(result.language)
        offset += duration
    words = [w for s in segments for w in s.words]
    confidence = (
        float(np.mean([w.probability for w in words]))
        if words
        else (float(np.mean([s.confidence for s in segments])) if segments else None)
    )
    text = " ".join(s.text for s in segments).strip()
    return Transcript(
        text=text,
        segments=tuple(segments),
        language=max(set(languages), key=languages.count) if languages else None,
        confidence=confidence,
        no_vocals=not text,
        model_id=transcriber.model_id,
        model_version=transcriber.model_version,
        duration=offset,
        processing_time=time.perf_counter() - started,
    )
