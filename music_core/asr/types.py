"""Transcription results: plain frozen dataclasses, JSON-friendly."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    word: str
    probability: float


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str
    confidence: float
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class ChunkResult:
    """What a backend returns for one chunk of audio (times relative to the chunk)."""

    segments: tuple[Segment, ...]
    language: str | None
    speech_seconds: float | None = None  # after voice-activity detection, when the backend knows


@dataclass(frozen=True)
class Transcript:
    text: str
    segments: tuple[Segment, ...]
    language: str | None
    confidence: float | None
    no_vocals: bool
    model_id: str
    model_version: str
    duration: float
    processing_time: float
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def real_time_factor(self) -> float | None:
        return self.processing_time / self.duration if self.duration > 0 else None

    @property
    def words(self) -> list[Word]:
        return [w for s in self.segments for w in s.words]

    def segments_json(self) -> list[dict[str, Any]]:
        return [{k: v for k, v in asdict(s).items() if k != "words"} for s in self.segments]

    def words_json(self) -> list[dict[str, Any]]:
        return [asdict(w) for w in self.words]


class Transcriber(Protocol):
    """One ASR backend. Audio is float32 mono at 16 kHz."""

    model_id: str
    model_version: str

    def transcribe_chunk(self, audio: np.ndarray) -> ChunkResult: ...
