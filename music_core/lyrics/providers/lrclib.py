"""LRCLIB (free, no key): /api/get by track, artist, album and duration (it matches within ±2 s),
then /api/search as a fallback; by a transcript snippet when the tags say nothing."""

from __future__ import annotations

from typing import Any

from music_core.lyrics.acceptance import accept, duration_ok, looks_like_junk
from music_core.lyrics.http import ProviderHttp
from music_core.lyrics.types import Lyrics, LyricsQuery
from music_core.search import query_words

DEFAULT_BASE = "https://lrclib.net"


class LrclibProvider:
    name = "lrclib"

    def __init__(self, http: ProviderHttp, base_url: str = DEFAULT_BASE) -> None:
        self.http = http
        self.base = base_url.rstrip("/")

    def _lyrics(self, item: dict[str, Any]) -> Lyrics | None:
        if item.get("instrumental"):
            return Lyrics(self.name, "", instrumental=True, artist=item.get("artistName"),
                          title=item.get("trackName"), album=item.get("albumName"),
                          duration=item.get("duration"), url=f"{self.base}/api/get/{item.get('id')}")  # fmt: skip
        plain = (item.get("plainLyrics") or "").strip()
        synced = item.get("syncedLyrics") or None
        if not plain or looks_like_junk(plain):
            return None
        return Lyrics(self.name, plain, synced=synced, artist=item.get("artistName"), title=item.get("trackName"),
                      album=item.get("albumName"), duration=item.get("duration"),
                      url=f"{self.base}/api/get/{item.get('id')}")  # fmt: skip

    def fetch(self, query: LyricsQuery) -> Lyrics | None:
        if query.title:
            params: dict[str, Any] = {"track_name": query.title, "artist_name": query.artist or ""}
            if query.album:
                params["album_name"] = query.album
            if query.duration:
                params["duration"] = round(query.duration)
            item = self.http.get_json(f"{self.base}/api/get", params)
            if item and accept(query.artist, query.title, query.duration,
                               item.get("artistName"), item.get("trackName"), item.get("duration")):  # fmt: skip
                return self._lyrics(item)
            search = {"track_name": query.title, **({"artist_name": query.artist} if query.artist else {})}
            for candidate in self.http.get_json(f"{self.base}/api/search", search) or []:
                if accept(query.artist, query.title, query.duration,
                          candidate.get("artistName"), candidate.get("trackName"), candidate.get("duration")):  # fmt: skip
                    found = self._lyrics(candidate)
                    if found:
                        return found
            return None
        snippet = query.transcript_snippet
        if not snippet:
            return None
        wanted = set(query_words(snippet))
        for candidate in self.http.get_json(f"{self.base}/api/search", {"q": snippet}) or []:
            plain = set(query_words(candidate.get("plainLyrics") or ""))
            if (
                duration_ok(query.duration, candidate.get("duration"))
                and wanted
                and len(wanted & plain) >= 0.6 * len(wanted)
            ):
                found = self._lyrics(candidate)
                if found:
                    return Lyrics(
                        **{**found.__dict__, "confidence": 0.7, "notes": ("found by transcript snippet",)}
                    )
        return None
