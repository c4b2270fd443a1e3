"""Response models (separate from table rows)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel


class HealthCheck(BaseModel):
    ok: bool
    detail: str | None = None


class Health(BaseModel):
    status: str  # ok | degraded | down
    checks: dict[str, HealthCheck]


class TrackSummary(BaseModel):
    id: str
    filename: str
    aliases: int
    size: int
    duration: float | None
    genre: str | None
    artist: str | None
    title: str | None
    uploaded_at: dt.datetime
    stages: dict[str, str]


class TrackPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[TrackSummary]


class SearchHit(BaseModel):
    track_id: str
    score: float
    filename: str
    title: str | None
    artist: str | None
    genre: str | None
    duration: float | None
    snippet: str | None
    ranks: dict[str, int]


class SearchResponse(BaseModel):
    query: str
    mode: str
    results: list[SearchHit]
    took_ms: float


class Alias(BaseModel):
    name: str
    folder: str | None
    uploads: int
    first_seen: dt.datetime


class StageState(BaseModel):
    status: str
    error: str | None
    warnings: list[str]
    attempts: int
    updated_at: dt.datetime


class TimedSegment(BaseModel):
    start: float
    end: float
    text: str
    confidence: float


class TimedWord(BaseModel):
    start: float
    end: float
    word: str
    probability: float


class TranscriptionOut(BaseModel):
    text: str
    language: str | None
    confidence: float | None
    no_vocals: bool
    model_id: str
    model_version: str | None
    processing_time: float | None
    real_time_factor: float | None
    segments: list[TimedSegment]
    words: list[TimedWord]


class LyricsOut(BaseModel):
    source: str
    text: str | None
    synced: str | None
    instrumental: bool
    url: str | None
    pinned: bool


class ComparisonOut(BaseModel):
    wer: float | None
    cer: float | None
    similarity: float | None
    reasons: list[str]
    alignment: list[dict]
    lines: list[dict]
    synced_lrc: str | None
    lrc_timing: dict | None
    llm_notes: str | None = None  # optional language-model notes (untrusted text: shown as text)


class TrackDetail(BaseModel):
    id: str
    filename: str
    size: int
    original_removed_at: dt.datetime | None = None  # retention removed the original, kept the analysis
    content_type: str | None
    container: str | None
    codec: str | None
    duration: float | None
    sample_rate: int | None
    channels: int | None
    bit_rate: int | None
    artist: str | None
    title: str | None
    album: str | None
    genre: str | None
    year: int | None
    uploaded_at: dt.datetime
    converted_size: int | None
    converted_duration: float | None
    aliases: list[Alias]
    stages: dict[str, StageState]
    transcription: TranscriptionOut | None
    lyrics: LyricsOut | None = None
    comparison: ComparisonOut | None = None
