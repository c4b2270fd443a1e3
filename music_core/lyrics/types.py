"""Lyrics and the query that finds them (plain frozen dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class LyricsQuery:
    track_id: str
    artist: str | None = None
    title: str | None = None
    album: str | None = None
    duration: float | None = None
    embedded_lyrics: str | None = None
    object_keys: tuple[str, ...] = ()  # where the audio was uploaded (sidecars sit next to it)
    transcript_snippet: str | None = None


@dataclass(frozen=True)
class Lyrics:
    source: str
    text: str
    synced: str | None = None  # LRC
    instrumental: bool = False
    artist: str | None = None
    title: str | None = None
    album: str | None = None
    url: str | None = None
    duration: float | None = None
    confidence: float = 1.0
    notes: tuple[str, ...] = field(default_factory=tuple)


class LyricsProvider(Protocol):
    name: str

    def fetch(self, query: LyricsQuery) -> Lyrics | None: ...
