"""Genius (Bearer token): ``GET /search?q=`` gives song hits; the lyrics are not in the API, so the chosen
hit's song page is fetched (without the token) and its ``data-lyrics-container`` blocks are extracted."""

from __future__ import annotations

import re
from typing import Any

from pydantic import SecretStr

from music_core.lyrics.acceptance import accept
from music_core.lyrics.extract import covers_snippet, page_lyrics
from music_core.lyrics.http import ProviderHttp
from music_core.lyrics.types import Lyrics, LyricsQuery

DEFAULT_BASE = "https://api.genius.com"
TRANSLATION = re.compile(
    r"translat|traducc|tradu[cç][aã]o|traduction|[üu]bersetzung|romani[sz]|перевод|genius (english|brasil|"
    r"deutsche|fran[cç]aise|espa[ñn]ol)",
    re.IGNORECASE,
)
MAX_PAGES = 3  # song pages fetched per lookup at most


def _hits(data: Any) -> list[dict[str, Any]]:
    """``response.hits[].result`` of a search answer, tolerating a malformed body."""
    hits = ((data or {}).get("response") or {}).get("hits") if isinstance(data, dict) else None
    out = []
    for hit in hits if isinstance(hits, list) else []:
        result = hit.get("result") if isinstance(hit, dict) else None
        if (
            isinstance(result, dict)
            and hit.get("type", "song") == "song"
            and isinstance(result.get("url"), str)
        ):
            out.append(result)
    return out


def _artist(result: dict[str, Any]) -> str | None:
    artist = result.get("primary_artist")
    return artist.get("name") if isinstance(artist, dict) else None


def is_translation(result: dict[str, Any]) -> bool:
    names = (
        " ".join(str(result.get(k) or "") for k in ("title", "full_title", "url"))
        + " "
        + (_artist(result) or "")
    )
    return bool(TRANSLATION.search(names))


class GeniusProvider:
    name = "genius"

    def __init__(self, http: ProviderHttp, token: SecretStr, base_url: str = DEFAULT_BASE) -> None:
        self.http = http
        self._token = token
        self.base = base_url.rstrip("/")

    def __repr__(self) -> str:
        return f"GeniusProvider(base={self.base!r}, token={self._token!r})"

    def _search(self, q: str) -> list[dict[str, Any]]:
        auth = {"Authorization": f"Bearer {self._token.get_secret_value()}", "Accept": "application/json"}
        return [r for r in _hits(self.http.get_json(f"{self.base}/search", {"q": q}, headers=auth))
                if not is_translation(r)]  # fmt: skip

    def _lyrics(self, result: dict[str, Any], text: str, **extra: Any) -> Lyrics:
        return Lyrics(
            self.name, text, artist=_artist(result), title=result.get("title"), url=result["url"], **extra
        )

    def fetch(self, query: LyricsQuery) -> Lyrics | None:
        if query.title:
            q = f"{query.artist} {query.title}" if query.artist else query.title
            chosen = [r for r in self._search(q)
                      if accept(query.artist, query.title, None, _artist(r), r.get("title"), None)]  # fmt: skip
            for result in chosen[:MAX_PAGES]:
                text = page_lyrics(self.http, result["url"])
                if text:
                    return self._lyrics(result, text)
            return None
        if not query.transcript_snippet:
            return None
        for result in self._search(query.transcript_snippet)[:MAX_PAGES]:
            text = page_lyrics(self.http, result["url"])
            if text and covers_snippet(text, query.transcript_snippet):
                return self._lyrics(result, text, confidence=0.7, notes=("found by transcript snippet",))
        return None
