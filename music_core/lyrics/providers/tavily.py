"""Tavily (``tavily-python``, Bearer key): an advanced search restricted to lyrics sites with the pages'
raw content included; the lyrics are extracted from ``raw_content`` (or, when it is missing, from the page).
429 and 5xx are retried by the SDK's requests session, honouring ``Retry-After`` (capped)."""

from __future__ import annotations

from typing import Any

import requests
from pydantic import SecretStr
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from music_core.lyrics.extract import covers_snippet, lyrics_from_text, on_sites, page_lyrics
from music_core.lyrics.http import ProviderError, ProviderHttp
from music_core.lyrics.providers.brave import LYRICS_SITES, names_track, search_query
from music_core.lyrics.types import Lyrics, LyricsQuery

DEFAULT_BASE = "https://api.tavily.com"
MAX_RAW_CHARS = 300_000  # per result, kept in the cache


def _session(retries: int, max_wait: float) -> requests.Session:
    session = requests.Session()
    retry = Retry(
        total=retries, status_forcelist=(429, 500, 502, 503, 504), allowed_methods=frozenset({"POST"}),
        backoff_factor=0.5, respect_retry_after_header=True, retry_after_max=int(max_wait), raise_on_status=False,
    )  # fmt: skip
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    return session


class TavilyProvider:
    name = "tavily"

    def __init__(
        self,
        http: ProviderHttp,
        api_key: SecretStr,
        base_url: str = DEFAULT_BASE,
        *,
        sites: tuple[str, ...] = LYRICS_SITES,
        max_results: int = 5,
        timeout: float = 30.0,
    ) -> None:
        self.http = http  # cache of lookups and page fetches
        self._key = api_key
        self.base = base_url.rstrip("/")
        self.sites = sites
        self.max_results = max_results
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"TavilyProvider(base={self.base!r}, api_key={self._key!r})"

    def _search(self, q: str) -> list[dict[str, Any]]:
        from tavily import TavilyClient  # the SDK is imported when used

        client = TavilyClient(
            api_key=self._key.get_secret_value(), api_base_url=self.base,
            session=_session(self.http.retries, self.http.max_wait),
        )  # fmt: skip
        try:
            answer = client.search(
                q, search_depth="advanced", include_domains=list(self.sites), include_raw_content=True,
                max_results=self.max_results, timeout=self.timeout,
            )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - SDK errors (tavily.errors, requests) become a note
            raise ProviderError(type(exc).__name__) from None
        finally:
            client.close()
        results = answer.get("results") if isinstance(answer, dict) else None
        return [
            {
                "title": str(r.get("title") or ""),
                "url": r["url"],
                "raw_content": (r.get("raw_content") or "")[:MAX_RAW_CHARS],
            }
            for r in (results if isinstance(results, list) else [])
            if isinstance(r, dict) and isinstance(r.get("url"), str)
        ]

    def fetch(self, query: LyricsQuery) -> Lyrics | None:
        q = search_query(query)
        if q is None:
            return None
        by_snippet = not query.title
        results = self.http.remember(
            {"q": q, "base": self.base, "sites": self.sites, "n": self.max_results}, lambda: self._search(q)
        )
        for result in results:
            if not on_sites(result["url"], self.sites):
                continue
            if not by_snippet and not names_track(query, result["title"], result["url"]):
                continue
            raw = result["raw_content"]
            text = lyrics_from_text(raw) if raw else page_lyrics(self.http, result["url"])
            if not text or (by_snippet and not covers_snippet(text, query.transcript_snippet or "")):
                continue
            extra: dict[str, Any] = (
                {"confidence": 0.7, "notes": ("found by transcript snippet",)} if by_snippet else {}
            )
            return Lyrics(self.name, text, artist=query.artist, title=query.title, url=result["url"], **extra)
        return None
