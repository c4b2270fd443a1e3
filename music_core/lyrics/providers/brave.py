"""Brave Web Search (``X-Subscription-Token``): ``GET /res/v1/web/search`` with q, count and search_lang;
results in ``web.results[]{title,url,description}``. Only results on known lyrics sites are fetched; their
title/URL must name the track (or, without tags, the page must contain the transcript snippet). Brave's
``X-RateLimit-Remaining``/``X-RateLimit-Reset`` windows and 429 ``Retry-After`` are honoured by ProviderHttp."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from music_core.lyrics.acceptance import mentions
from music_core.lyrics.extract import covers_snippet, on_sites, page_lyrics
from music_core.lyrics.http import ProviderHttp
from music_core.lyrics.types import Lyrics, LyricsQuery

DEFAULT_BASE = "https://api.search.brave.com"
LYRICS_SITES = (
    "genius.com", "azlyrics.com", "lyrics.com", "musixmatch.com", "songlyrics.com", "lyricsfreak.com",
    "letras.com", "lyrics.lyricfind.com", "songtexte.com", "paroles.net", "lyricsondemand.com",
)  # fmt: skip
MAX_PAGES = 3


def search_query(query: LyricsQuery) -> str | None:
    if query.title:
        return f'{query.artist or ""} "{query.title}" lyrics'.strip()
    if query.transcript_snippet:
        return f'"{query.transcript_snippet}" lyrics'
    return None


def names_track(query: LyricsQuery, result_title: str, url: str) -> bool:
    """A search result is about the track when its title or URL names the title and the artist (if known)."""
    about = f"{result_title} {url.rsplit('/', 1)[-1]}"
    return mentions(about, query.title) and (not query.artist or mentions(about, query.artist))


class BraveProvider:
    name = "brave"

    def __init__(
        self,
        http: ProviderHttp,
        api_key: SecretStr,
        base_url: str = DEFAULT_BASE,
        *,
        sites: tuple[str, ...] = LYRICS_SITES,
        search_lang: str = "en",
        count: int = 10,
    ) -> None:
        self.http = http
        self._key = api_key
        self.base = base_url.rstrip("/")
        self.sites = sites
        self.search_lang = search_lang
        self.count = count

    def __repr__(self) -> str:
        return f"BraveProvider(base={self.base!r}, api_key={self._key!r})"

    def _results(self, q: str) -> list[dict[str, Any]]:
        headers = {"X-Subscription-Token": self._key.get_secret_value(), "Accept": "application/json"}
        params = {"q": q, "count": self.count, "search_lang": self.search_lang}
        data = self.http.get_json(f"{self.base}/res/v1/web/search", params, headers=headers)
        results = ((data or {}).get("web") or {}).get("results") if isinstance(data, dict) else None
        return [r for r in results if isinstance(r, dict) and isinstance(r.get("url"), str)
                and on_sites(r["url"], self.sites)] if isinstance(results, list) else []  # fmt: skip

    def fetch(self, query: LyricsQuery) -> Lyrics | None:
        q = search_query(query)
        if q is None:
            return None
        by_snippet = not query.title
        tried = 0
        for result in self._results(q):
            if not by_snippet and not names_track(query, str(result.get("title") or ""), result["url"]):
                continue
            tried += 1
            text = page_lyrics(self.http, result["url"])
            if text and (not by_snippet or covers_snippet(text, query.transcript_snippet or "")):
                extra: dict[str, Any] = (
                    {"confidence": 0.7, "notes": ("found by transcript snippet",)} if by_snippet else {}
                )
                return Lyrics(
                    self.name, text, artist=query.artist, title=query.title, url=result["url"], **extra
                )
            if tried >= MAX_PAGES:
                break
        return None
