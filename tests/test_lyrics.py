"""Lyrics providers: tags, sidecars in the bucket, and LRCLIB over a local server with its documented shapes."""

from __future__ import annotations

import io

import httpx
import pytest
import redis

from music_core.embedded import ServiceEndpoints
from music_core.lyrics.acceptance import accept, duration_ok, looks_like_junk, name_similarity
from music_core.lyrics.http import ProviderHttp
from music_core.lyrics.providers.local import EmbeddedTagsProvider, SidecarProvider
from music_core.lyrics.providers.lrclib import LrclibProvider
from music_core.lyrics.registry import build_providers, find_lyrics
from music_core.lyrics.types import LyricsQuery
from music_core.storage import ObjectStore
from tests.fake_lrclib import fake_lrclib

JFK = LyricsQuery(track_id="a" * 64, artist="John F. Kennedy", title="Ask Not", duration=11.2)


def lrclib(base: str, cache_url: str | None = None) -> LrclibProvider:
    return LrclibProvider(ProviderHttp("lrclib", cache_url=cache_url, min_interval=0.0), base)


def test_get_by_track_with_duration() -> None:
    with fake_lrclib() as (base, state):
        found = lrclib(base).fetch(JFK)
    assert (
        found is not None
        and found.source == "lrclib"
        and found.synced
        and "fellow americans" in found.text.lower()
    )
    path, params = state.requests[0]
    assert path == "/api/get" and params["duration"] == "11" and params["artist_name"] == "John F. Kennedy"


def test_search_fallback_rejects_wrong_duration_and_artist() -> None:
    query = LyricsQuery(track_id="b" * 64, artist="Nobody", title="Ask Not", duration=240)
    with fake_lrclib() as (base, state):
        assert lrclib(base).fetch(query) is None  # the remix matches the title, not the artist
    assert [p for p, _ in state.requests] == ["/api/get", "/api/search"]


def test_snippet_search_when_tags_are_missing() -> None:
    query = LyricsQuery(
        track_id="c" * 64, duration=11.0, transcript_snippet="ask not what your country can do for"
    )
    with fake_lrclib() as (base, state):
        found = lrclib(base).fetch(query)
    assert found is not None and found.title == "Ask Not" and found.confidence < 1
    assert state.requests[0] == ("/api/search", {"q": "ask not what your country can do for"})


def test_instrumental_flag_is_kept() -> None:
    with fake_lrclib() as (base, _):
        found = lrclib(base).fetch(
            LyricsQuery(track_id="d" * 64, artist="Band", title="Sectoid War", duration=175)
        )
    assert found is not None and found.instrumental and found.text == ""


def test_429_is_retried_after_the_advertised_delay() -> None:
    with fake_lrclib() as (base, state):
        state.rate_limit_next = 1
        found = lrclib(base).fetch(JFK)
    assert found is not None
    assert len(state.requests) == 2


def test_persistent_rate_limit_gives_up_with_a_note() -> None:
    with fake_lrclib() as (base, state):
        state.rate_limit_next = 10
        found, notes = find_lyrics([lrclib(base)], JFK)
    assert found is None and notes == ["lrclib unavailable: HTTPStatusError"]


def test_unreachable_server_is_a_note_not_a_failure() -> None:
    provider = LrclibProvider(ProviderHttp("lrclib", timeout=0.5, retries=0), "http://127.0.0.1:9")
    assert find_lyrics([provider], JFK) == (None, ["lrclib unavailable: ConnectError"])


def test_lookups_are_cached_in_redis_and_work_without_it(services: ServiceEndpoints) -> None:
    redis.Redis.from_url(services.redis_url).flushdb()
    with fake_lrclib() as (base, state):
        cached = lrclib(base, services.redis_url)
        assert cached.fetch(JFK) is not None and cached.fetch(JFK) is not None
        assert len(state.requests) == 1  # the second lookup came from Redis
        dead = lrclib(base, "redis://127.0.0.1:1/0")
        assert dead.fetch(JFK) is not None


def test_slow_bodies_time_out() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow body", request=request)

    provider = LrclibProvider(
        ProviderHttp("lrclib", retries=1, min_interval=0.0, transport=httpx.MockTransport(slow)),
        "http://lrclib.test",
    )
    assert find_lyrics([provider], JFK) == (None, ["lrclib unavailable: ReadTimeout"])


def test_embedded_tags_and_junk() -> None:
    tags = EmbeddedTagsProvider()
    assert tags.fetch(
        LyricsQuery(track_id="e" * 64, embedded_lyrics="la la la, the real song words")
    ).text.startswith("la")
    assert (
        tags.fetch(LyricsQuery(track_id="e" * 64, embedded_lyrics="Lyrics not available yet, sorry!")) is None
    )
    synced = tags.fetch(
        LyricsQuery(track_id="e" * 64, embedded_lyrics="[00:01.00] one line\n[00:02.00] two line")
    )
    assert synced is not None and synced.synced and synced.text == "one line\ntwo line"


def test_sidecars_next_to_inbox_uploads(store: ObjectStore) -> None:
    body = b"[00:01.00] first line of the song\n[00:04.00] second line of the song\n"
    store.put_stream("inbox/Pop/song.lrc", io.BytesIO(body), len(body), "text/plain")
    query = LyricsQuery(track_id="f" * 64, object_keys=("inbox/Pop/song.mp3",))
    found = SidecarProvider(store).fetch(query)
    assert (
        found is not None
        and found.source == "sidecar"
        and found.text.splitlines()[0] == "first line of the song"
    )
    assert (
        SidecarProvider(store).fetch(LyricsQuery(track_id="f" * 64, object_keys=("inbox/other.mp3",))) is None
    )


def test_registry_order_and_unknown_names(store: ObjectStore) -> None:
    providers = build_providers(["tags", "sidecar"], store, cache_url=None, lrclib_url="http://x")
    found, notes = find_lyrics(
        providers, LyricsQuery(track_id="0" * 64, embedded_lyrics="words from the tag itself")
    )
    assert found is not None and found.source == "tags" and notes == []
    with pytest.raises(ValueError, match="unknown lyrics provider"):
        build_providers(["genius?"], store, cache_url=None, lrclib_url="http://x")


@pytest.mark.parametrize(
    ("a", "b", "ok"),
    [
        ("Ask Not", "ask not", True),
        ("Ask Not (Live)", "Ask Not", True),
        ("Beyoncé", "Beyonce", True),
        ("A", "B", False),
    ],
)
def test_name_similarity(a: str, b: str, ok: bool) -> None:
    assert (name_similarity(a, b) >= 0.8) is ok


def test_acceptance_rules() -> None:
    assert duration_ok(200, 209) and not duration_ok(200, 211) and duration_ok(None, 5)
    assert accept("JFK", "Ask Not", 11, "jfk", "Ask not", 11.3)
    assert not accept("JFK", "Ask Not", 11, "JFK", "Something Else", 11)
    assert looks_like_junk("short") and looks_like_junk(
        "Unfortunately, we are not licensed to display these lyrics"
    )
