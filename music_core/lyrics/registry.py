"""Lyrics providers by name, tried in the configured order; the first accepted result wins."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import httpx

from music_core.lyrics.http import ProviderHttp
from music_core.lyrics.providers.local import EmbeddedTagsProvider, SidecarProvider
from music_core.lyrics.providers.lrclib import LrclibProvider
from music_core.lyrics.types import Lyrics, LyricsProvider, LyricsQuery
from music_core.storage import ObjectStore

log = logging.getLogger(__name__)
KNOWN = ("tags", "sidecar", "lrclib")


def build_providers(
    names: Sequence[str],
    store: ObjectStore,
    *,
    cache_url: str | None,
    lrclib_url: str,
    transport: httpx.BaseTransport | None = None,
) -> list[LyricsProvider]:
    providers: list[LyricsProvider] = []
    for name in names:
        if name == "tags":
            providers.append(EmbeddedTagsProvider())
        elif name == "sidecar":
            providers.append(SidecarProvider(store))
        elif name == "lrclib":
            providers.append(
                LrclibProvider(ProviderHttp("lrclib", cache_url=cache_url, transport=transport), lrclib_url)
            )
        else:
            raise ValueError(f"unknown lyrics provider {name!r}; known: {', '.join(KNOWN)}")
    return providers


def find_lyrics(providers: Sequence[LyricsProvider], query: LyricsQuery) -> tuple[Lyrics | None, list[str]]:
    """The first provider's accepted lyrics, and notes on providers that failed (never raises)."""
    notes: list[str] = []
    for provider in providers:
        try:
            found = provider.fetch(query)
        except httpx.HTTPError as exc:
            notes.append(f"{provider.name} unavailable: {type(exc).__name__}")
            continue
        if found is not None:
            return found, notes
    return None, notes
