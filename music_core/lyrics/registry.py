"""Lyrics providers by name, tried in the configured order; the first accepted result wins."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import httpx
from pydantic import SecretStr

from music_core.lyrics.http import ProviderError, ProviderHttp, ProviderSkipped
from music_core.lyrics.providers.brave import BraveProvider
from music_core.lyrics.providers.genius import GeniusProvider
from music_core.lyrics.providers.local import EmbeddedTagsProvider, SidecarProvider
from music_core.lyrics.providers.lrclib import LrclibProvider
from music_core.lyrics.providers.tavily import TavilyProvider
from music_core.lyrics.types import Lyrics, LyricsProvider, LyricsQuery
from music_core.storage import ObjectStore

log = logging.getLogger(__name__)
KNOWN = ("tags", "sidecar", "lrclib", "genius", "brave", "tavily")
WEB = {"genius": GeniusProvider, "brave": BraveProvider, "tavily": TavilyProvider}  # need a key
KEY_ENV = {"genius": "MUSIC_GENIUS_TOKEN", "brave": "MUSIC_BRAVE_API_KEY", "tavily": "MUSIC_TAVILY_API_KEY"}


class Unconfigured:
    """A keyed provider without a key: looking it up records a note instead of failing."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason

    def fetch(self, query: LyricsQuery) -> Lyrics | None:
        raise ProviderSkipped(self.reason)


def build_providers(
    names: Sequence[str],
    store: ObjectStore,
    *,
    cache_url: str | None,
    lrclib_url: str,
    transport: httpx.BaseTransport | None = None,
    keys: Mapping[str, SecretStr | None] | None = None,
    urls: Mapping[str, str] | None = None,
) -> list[LyricsProvider]:
    """Providers in order; ``keys`` and ``urls`` by provider name for the keyed web providers."""
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
        elif name in WEB:
            key = (keys or {}).get(name)
            if key is None or not key.get_secret_value():
                providers.append(Unconfigured(name, f"no API key ({KEY_ENV[name]} or api_config)"))
                continue
            http = ProviderHttp(name, cache_url=cache_url, transport=transport)
            url = (urls or {}).get(name)
            providers.append(WEB[name](http, key, url) if url else WEB[name](http, key))
        else:
            raise ValueError(f"unknown lyrics provider {name!r}; known: {', '.join(KNOWN)}")
    return providers


def find_lyrics(providers: Sequence[LyricsProvider], query: LyricsQuery) -> tuple[Lyrics | None, list[str]]:
    """The first provider's accepted lyrics, and notes on providers that failed (never raises)."""
    notes: list[str] = []
    for provider in providers:
        try:
            found = provider.fetch(query)
        except ProviderSkipped as exc:
            notes.append(f"{provider.name} skipped: {exc}")
            continue
        except ProviderError as exc:
            notes.append(f"{provider.name} unavailable: {exc}")
            continue
        except httpx.HTTPError as exc:
            notes.append(f"{provider.name} unavailable: {type(exc).__name__}")
            continue
        except Exception as exc:  # noqa: BLE001 - a broken answer (HTML where JSON was due, a parser bug)
            log.warning("lyrics provider %s failed", provider.name, exc_info=True)
            notes.append(f"{provider.name} unavailable: {type(exc).__name__}")
            continue
        if found is not None:
            return found, notes
    return None, notes


def any_provider_unavailable(notes: Sequence[str]) -> bool:
    """Whether ``find_lyrics`` could not ask some provider (so "none found" may not be the answer)."""
    return any(" unavailable: " in note for note in notes)
