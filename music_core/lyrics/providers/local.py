"""Lyrics already at hand: embedded tags, and sidecar .lrc/.txt files uploaded next to the audio."""

from __future__ import annotations

import posixpath

from music_core.lyrics.acceptance import looks_like_junk
from music_core.lyrics.lrc import looks_like_lrc, plain_from_lrc
from music_core.lyrics.types import Lyrics, LyricsQuery
from music_core.naming import sidecar_key
from music_core.storage import ObjectStore

MAX_SIDECAR_BYTES = 512 * 1024


def _from_text(source: str, text: str, url: str | None = None) -> Lyrics | None:
    text = text.replace("\r\n", "\n").strip()
    if looks_like_lrc(text):
        return Lyrics(source, plain_from_lrc(text), synced=text + "\n", url=url)
    if looks_like_junk(text):
        return None
    return Lyrics(source, text, url=url)


class EmbeddedTagsProvider:
    """ID3 USLT / Vorbis LYRICS / MP4 ©lyr, read by the audio_file stage."""

    name = "tags"

    def fetch(self, query: LyricsQuery) -> Lyrics | None:
        return _from_text(self.name, query.embedded_lyrics) if query.embedded_lyrics else None


class SidecarProvider:
    """``song.lrc`` or ``song.txt`` uploaded beside ``song.mp3`` (LRC wins: it carries timing)."""

    name = "sidecar"

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def _candidates(self, query: LyricsQuery) -> list[str]:
        keys = [sidecar_key(query.track_id, suffix) for suffix in (".lrc", ".txt")]  # brought by `process`
        for key in query.object_keys:  # uploaded beside the audio in the inbox
            stem = posixpath.splitext(key)[0]
            keys += [stem + suffix for suffix in (".lrc", ".txt", ".LRC", ".TXT")]
        return keys

    def fetch(self, query: LyricsQuery) -> Lyrics | None:
        for key in self._candidates(query):
            info = self.store.stat(key)
            if info is None or info.size > MAX_SIDECAR_BYTES:
                continue
            raw = b"".join(self.store.iter_chunks(info.key)).decode("utf-8", errors="replace")
            found = _from_text(self.name, raw, url=f"s3://{self.store.bucket}/{info.key}")
            if found:
                return found
        return None
