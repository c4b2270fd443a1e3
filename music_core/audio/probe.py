"""Read container, stream and tag facts with PyAV (FFmpeg's libraries, in process)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import av

from music_core.audio.errors import AudioError

_TAG_ALIASES = {
    "title": ("title",),
    "artist": ("artist", "album_artist", "performer"),
    "album": ("album",),
    "genre": ("genre",),
    "year": ("date", "year", "originaldate", "tdrc"),
}


@dataclass(frozen=True)
class AudioProbe:
    container: str
    codec: str
    duration: float | None
    sample_rate: int
    channels: int
    bit_rate: int | None
    has_video: bool
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def title(self) -> str | None:
        return self._tag("title")

    @property
    def artist(self) -> str | None:
        return self._tag("artist")

    @property
    def album(self) -> str | None:
        return self._tag("album")

    @property
    def genre(self) -> str | None:
        return self._tag("genre")

    @property
    def year(self) -> int | None:
        raw = self._tag("year")
        match = re.search(r"\b(1[5-9]\d\d|20\d\d)\b", raw or "")
        return int(match.group(1)) if match else None

    @property
    def lyrics(self) -> str | None:
        """Embedded lyrics: ID3 USLT (``lyrics-eng``), Vorbis/FLAC ``LYRICS``, MP4 ``lyrics``."""
        for key, value in self.tags.items():
            if (key == "lyrics" or key.startswith("lyrics-") or key == "unsyncedlyrics") and value.strip():
                return value
        return None

    def _tag(self, name: str) -> str | None:
        for key in _TAG_ALIASES[name]:
            value = self.tags.get(key, "").strip()
            if value:
                return value[:500]
        return None


def _matroska_duration(value: str | None) -> float | None:
    """Matroska writes per-stream durations as a ``HH:MM:SS.nnnnnnnnn`` tag."""
    match = re.fullmatch(r"(\d+):(\d{2}):(\d{2}(?:\.\d+)?)", (value or "").strip())
    if not match:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _tag_text(value: object) -> str:
    """A tag as text. Tags should be UTF-8, but Windows tools write WAV INFO and ID3v1 tags in the
    ANSI code page: those bytes (kept by ``surrogateescape``) are read as Windows-1252, so "caf\\xe9"
    becomes "café" instead of failing the whole track."""
    raw = str(value).encode("utf-8", "surrogateescape")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


def probe(source: str, timeout_seconds: float = 30.0) -> AudioProbe:
    """Probe a local path or URL. Raises AudioError with a one-line reason."""
    try:
        container = av.open(
            source,
            timeout=timeout_seconds,
            options={"rw_timeout": str(int(timeout_seconds * 1e6))},
            metadata_errors="surrogateescape",  # tags that are not UTF-8: see _tag_text
        )
    except av.error.FFmpegError as exc:
        raise AudioError(f"not a readable audio or video file: {exc.strerror or exc}") from exc
    with container:
        audio = container.streams.audio
        if not audio:
            kinds = sorted({s.type for s in container.streams}) or ["no streams"]
            raise AudioError(f"no audio stream (found: {', '.join(kinds)})")
        stream = audio[0]
        ctx = stream.codec_context
        # The audio stream's own duration first: a video track can make the container longer.
        duration = None
        if stream.duration and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif (tagged := _matroska_duration(stream.metadata.get("DURATION"))) is not None:
            duration = tagged
        elif container.duration is not None and container.duration > 0:
            duration = container.duration / av.time_base
        tags = {_tag_text(k).lower(): _tag_text(v) for k, v in container.metadata.items()}
        for k, v in stream.metadata.items():
            tags.setdefault(_tag_text(k).lower(), _tag_text(v))
        if not ctx.sample_rate or not ctx.channels:
            raise AudioError(f"audio stream has no usable format (codec {ctx.name})")
        return AudioProbe(
            container=container.format.name,
            codec=ctx.name,
            duration=duration,
            sample_rate=int(ctx.sample_rate),
            channels=int(ctx.channels),
            bit_rate=int(container.bit_rate) if container.bit_rate else None,
            has_video=bool(container.streams.video),
            tags=tags,
        )
