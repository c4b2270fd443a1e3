"""Web lyrics providers (Genius, Brave, Tavily) against faithful local fakes, the HTML extractor, encrypted
provider keys in api_config, and pinned lyrics winning over every provider."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import httpx
import psycopg
import pytest
import redis
from pydantic import SecretStr

from music_core import provider_keys
from music_core.cache_generation import GENERATION_KEY
from music_core.db import lyrics as lyrics_db
from music_core.db import tracks
from music_core.db.connection import connect
from music_core.embedded import load_or_create_secrets
from music_core.lyrics.extract import PARSE_SECONDS, extract_lyrics, lyrics_from_text, page_lyrics
from music_core.lyrics.http import ProviderHttp
from music_core.lyrics.providers.brave import LYRICS_SITES, BraveProvider
from music_core.lyrics.providers.genius import GeniusProvider
from music_core.lyrics.providers.tavily import TavilyProvider
from music_core.lyrics.registry import build_providers, find_lyrics
from music_core.lyrics.types import LyricsQuery
from music_core.lyrics_stages import lyrics_stage
from music_core.settings import Settings
from music_core.stages import stage_context
from music_core.storage import ObjectStore
from tests.fake_lyrics_web import (
    AZ_PAGE,
    BRAVE_KEY,
    GENIUS_PAGE,
    JFK_LINES,
    NOT_LICENSED_PAGE,
    SCRIPT_MARKER,
    TAVILY_KEY,
    TAVILY_RAW,
    TOKEN,
    FakeWeb,
    fake_lyrics_web,
)

JFK = LyricsQuery(track_id="a" * 64, artist="John F. Kennedy", title="Ask Not", duration=11.0)
SNIPPET = LyricsQuery(
    track_id="b" * 64, duration=11.0, transcript_snippet="ask not what your country can do for you"
)
SITES = (*LYRICS_SITES, "127.0.0.1")


@pytest.fixture
def web() -> FakeWeb:
    with fake_lyrics_web() as fake:
        yield fake


def http(name: str, **kw: object) -> ProviderHttp:
    return ProviderHttp(name, min_interval=0.0, **kw)  # type: ignore[arg-type]


def genius(web: FakeWeb, token: str = TOKEN, **kw: object) -> GeniusProvider:
    return GeniusProvider(http("genius", **kw), SecretStr(token), web.genius)


def brave(web: FakeWeb, key: str = BRAVE_KEY, **kw: object) -> BraveProvider:
    return BraveProvider(http("brave", **kw), SecretStr(key), web.brave, sites=SITES)


def tavily(web: FakeWeb, key: str = TAVILY_KEY, **kw: object) -> TavilyProvider:
    return TavilyProvider(http("tavily", **kw), SecretStr(key), web.tavily, sites=SITES)


def plain_only(text: str) -> None:
    assert SCRIPT_MARKER not in text and "<" not in text and ">" not in text and "onerror" not in text


# --- extraction -------------------------------------------------------------------------------------------


def test_genius_page_extraction_keeps_lines_and_drops_scripts_ads_and_headers() -> None:
    text = extract_lyrics(GENIUS_PAGE)
    assert text is not None
    plain_only(text)
    lines = [line for line in text.splitlines() if line and not line.startswith("[")]
    assert lines == JFK_LINES
    assert "Contributors" not in text and "Advertisement" not in text and "Genius Media" not in text


def test_generic_page_extraction_takes_the_block_of_short_lines() -> None:
    text = extract_lyrics(AZ_PAGE)
    assert text is not None
    plain_only(text)
    assert [line for line in text.splitlines() if line] == JFK_LINES
    assert text.splitlines()[3] == ""  # the stanza break survives
    assert "Submit Corrections" not in text and "Privacy" not in text and "prose" not in text


def test_page_text_from_tavily_raw_content() -> None:
    text = lyrics_from_text(TAVILY_RAW)
    assert text is not None and [line for line in text.splitlines() if line] == JFK_LINES


@pytest.mark.parametrize(
    "html",
    [
        NOT_LICENSED_PAGE,
        "<html><body><div>Lyrics not available<br>for this song yet<br>sorry</div></body></html>",
        "<html><body><script>" + "a line<br>" * 50 + "</script></body></html>",
        "<html><body><nav>" + "<a href='/x'>Artist</a><br>" * 30 + "</nav></body></html>",
        "<html><body><p>" + "one long paragraph of prose " * 40 + "</p></body></html>",
        "",
        "<<<>>> </div></p><br/><br/",
    ],
)
def test_junk_and_non_lyrics_pages_give_nothing(html: str) -> None:
    assert extract_lyrics(html) is None


def test_hostile_nesting_is_bounded() -> None:
    """100 000 nested elements neither overflow the stack nor take quadratic time."""
    lines = "".join(f"line number {i} of the song<br>" for i in range(8))
    started = time.monotonic()
    text = extract_lyrics("<div>" * 100_000 + lines + "</div>" * 100_000)
    assert text is not None and text.splitlines()[0] == "line number 0 of the song"
    assert time.monotonic() - started < 15


def test_escaped_markup_in_lyrics_stays_text_and_entities_are_decoded() -> None:
    page = "<div data-lyrics-container='true'>Rock &amp; roll &lt;b&gt; line one<br/>second line here<br/>third</div>"
    assert extract_lyrics(page) == "Rock & roll <b> line one\nsecond line here\nthird"


# --- Genius -----------------------------------------------------------------------------------------------


def test_genius_chooses_the_right_hit_and_never_sends_the_token_to_pages(web: FakeWeb) -> None:
    found = genius(web).fetch(JFK)
    assert found is not None and found.source == "genius"
    assert found.url == web.pages + "/John-f-kennedy-ask-not-lyrics" and found.artist == "John F. Kennedy"
    plain_only(found.text)
    assert [line for line in found.text.splitlines() if line and not line.startswith("[")] == JFK_LINES
    api = web.states["genius"].requests
    assert [(r.path, r.params) for r in api] == [("/search", {"q": "John F. Kennedy Ask Not"})]
    assert api[0].headers["authorization"] == f"Bearer {TOKEN}"
    pages = web.states["pages"].requests
    assert [r.path for r in pages] == ["/John-f-kennedy-ask-not-lyrics"]  # no translation, no cover fetched
    assert all("authorization" not in r.headers for r in pages)


def test_genius_rejects_a_not_licensed_page_and_wrong_songs(web: FakeWeb) -> None:
    cover = LyricsQuery(track_id="c" * 64, artist="Cover Band", title="Ask Not")
    assert genius(web).fetch(cover) is None  # the only matching hit's page is a licensing notice
    assert [r.path for r in web.states["pages"].requests] == ["/Cover-band-ask-not-lyrics"]
    nobody = LyricsQuery(track_id="c" * 64, artist="Nobody", title="Something Else Entirely")
    assert genius(web).fetch(nobody) is None


def test_genius_finds_a_song_by_transcript_snippet(web: FakeWeb) -> None:
    found = genius(web).fetch(SNIPPET)
    assert found is not None and found.title == "Ask Not" and found.confidence < 1
    assert web.states["genius"].requests[0].params == {"q": SNIPPET.transcript_snippet}
    assert "/Genius-traducciones" not in " ".join(web.states["pages"].paths())


def test_genius_bad_token_is_a_note(web: FakeWeb) -> None:
    assert find_lyrics([genius(web, token="wrong")], JFK) == (None, ["genius unavailable: HTTPStatusError"])


def test_genius_429_is_retried_after_retry_after(web: FakeWeb) -> None:
    web.states["genius"].rate_limit_next = 1
    web.states["genius"].retry_after = "1"
    found = genius(web).fetch(JFK)
    first, second = web.states["genius"].requests[:2]
    assert found is not None and second.at - first.at >= 0.95


# --- Brave ------------------------------------------------------------------------------------------------


def test_brave_fetches_only_the_lyrics_site_result_naming_the_track(web: FakeWeb) -> None:
    found = brave(web).fetch(JFK)
    assert found is not None and found.source == "brave"
    assert found.url == web.pages + "/lyrics/kennedy/asknot.html"
    assert [line for line in found.text.splitlines() if line] == JFK_LINES
    plain_only(found.text)
    (api,) = web.states["brave"].requests
    assert api.path == "/res/v1/web/search" and api.headers["x-subscription-token"] == BRAVE_KEY
    assert api.params == {"q": 'John F. Kennedy "Ask Not" lyrics', "count": "10", "search_lang": "en"}
    # the video result is off-site and the Queen page names another song: neither is fetched
    assert web.states["pages"].paths() == ["/lyrics/kennedy/asknot.html"]


def test_brave_snippet_search_checks_the_page_words(web: FakeWeb) -> None:
    found = brave(web).fetch(SNIPPET)
    assert found is not None and found.confidence < 1 and "freedom of man" in found.text
    assert web.states["pages"].paths() == ["/Queen-we-will-rock-you-lyrics", "/lyrics/kennedy/asknot.html"]


def test_brave_honours_an_exhausted_per_second_window(web: FakeWeb) -> None:
    web.states["brave"].rate_headers = {"X-RateLimit-Remaining": "0, 14000", "X-RateLimit-Reset": "1, 90000"}
    provider = brave(web)
    provider.fetch(JFK)
    provider.fetch(LyricsQuery(track_id="d" * 64, artist="Queen", title="We Will Rock You"))
    first, second = web.states["brave"].requests
    assert second.at - first.at >= 0.9


def test_brave_exhausted_monthly_quota_fails_fast_with_a_note(web: FakeWeb) -> None:
    web.states["brave"].rate_headers = {"X-RateLimit-Remaining": "1, 0", "X-RateLimit-Reset": "1, 90000"}
    provider = brave(web)
    assert provider.fetch(JFK) is not None
    started = time.monotonic()
    assert find_lyrics([provider], JFK) == (None, ["brave unavailable: RateLimited"])
    assert time.monotonic() - started < 1 and len(web.states["brave"].requests) == 1


def test_brave_429_retry_after_and_bad_key(web: FakeWeb) -> None:
    web.states["brave"].rate_limit_next = 1
    assert brave(web).fetch(JFK) is not None
    first, second = web.states["brave"].requests[:2]
    assert second.at - first.at >= 0.95
    assert find_lyrics([brave(web, key="nope")], JFK) == (None, ["brave unavailable: HTTPStatusError"])


# --- Tavily -----------------------------------------------------------------------------------------------


def test_tavily_searches_lyrics_sites_and_extracts_raw_content(web: FakeWeb) -> None:
    found = tavily(web).fetch(JFK)
    assert found is not None and found.source == "tavily"
    assert found.url == "https://www.lyrics.com/lyric/2/Kennedy/Ask+Not"
    assert [line for line in found.text.splitlines() if line] == JFK_LINES
    (api,) = web.states["tavily"].requests
    assert (
        api.method == "POST"
        and api.path == "/search"
        and api.headers["authorization"] == f"Bearer {TAVILY_KEY}"
    )
    assert api.body["search_depth"] == "advanced" and api.body["include_raw_content"] is True
    assert (
        api.body["include_domains"] == list(SITES) and api.body["query"] == 'John F. Kennedy "Ask Not" lyrics'
    )
    assert web.states["pages"].requests == []  # raw content was enough


def test_tavily_fetches_the_page_when_raw_content_is_missing(web: FakeWeb) -> None:
    provider = TavilyProvider(http("tavily"), SecretStr(TAVILY_KEY), web.tavily, sites=("127.0.0.1",))
    found = provider.fetch(SNIPPET)
    assert (
        found is not None and found.confidence < 1 and found.url == web.pages + "/lyrics/kennedy/asknot.html"
    )
    plain_only(found.text)


def test_tavily_429_retried_and_bad_key_noted(web: FakeWeb) -> None:
    web.states["tavily"].rate_limit_next = 1
    assert tavily(web).fetch(JFK) is not None
    first, second = web.states["tavily"].requests[:2]
    assert second.at - first.at >= 0.95
    web.states["tavily"].rate_limit_next = 10
    assert find_lyrics([tavily(web, retries=1)], JFK) == (
        None,
        ["tavily unavailable: UsageLimitExceededError"],
    )
    assert find_lyrics([tavily(web, key="tvly-wrong")], JFK) == (
        None,
        ["tavily unavailable: InvalidAPIKeyError"],
    )


# --- HTTP edge cases --------------------------------------------------------------------------------------


def test_slow_bodies_hangs_and_404_pages(web: FakeWeb) -> None:
    quick = http("pages", timeout=0.5, retries=0)
    for path, error in (("/slow", httpx.ReadTimeout), ("/hang", httpx.ReadTimeout)):
        started = time.monotonic()
        with pytest.raises(error):
            page_lyrics(quick, web.pages + path)
        assert time.monotonic() - started < 2.5
    assert page_lyrics(quick, web.pages + "/missing") is None
    assert (
        page_lyrics(quick, "javascript:alert(1)") is None and page_lyrics(quick, "file:///etc/passwd") is None
    )


def test_providers_without_keys_are_skipped_with_notes(store: ObjectStore, web: FakeWeb) -> None:
    providers = build_providers(["genius", "brave", "tavily"], store, cache_url=None, lrclib_url="http://x",
                                keys={"brave": SecretStr("")}, urls={"genius": web.genius})  # fmt: skip
    assert find_lyrics(providers, JFK) == (None, [
        "genius skipped: no API key (MUSIC_GENIUS_TOKEN or api_config)",
        "brave skipped: no API key (MUSIC_BRAVE_API_KEY or api_config)",
        "tavily skipped: no API key (MUSIC_TAVILY_API_KEY or api_config)",
    ])  # fmt: skip
    assert web.states["genius"].requests == []


def test_registry_builds_keyed_providers_in_order(store: ObjectStore, web: FakeWeb) -> None:
    keys = {"genius": SecretStr("wrong"), "brave": SecretStr(BRAVE_KEY)}
    providers = build_providers(["genius", "brave"], store, cache_url=None, lrclib_url="http://x", keys=keys,
                                urls={"genius": web.genius, "brave": web.brave})  # fmt: skip
    for p in providers:
        p.http.min_interval = 0.0  # type: ignore[attr-defined]
        p.sites = SITES  # type: ignore[attr-defined]
    found, notes = find_lyrics(providers, JFK)
    assert found is not None and found.source == "brave" and notes == ["genius unavailable: HTTPStatusError"]


def test_keys_never_appear_in_logs_reprs_or_notes(web: FakeWeb, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    providers = [
        genius(web),
        brave(web),
        tavily(web),
        genius(web, token=TOKEN + "x"),
        tavily(web, key="k" * 20),
    ]
    for provider in providers:
        _, notes = find_lyrics([provider], JFK)
        assert not any(TOKEN in n or BRAVE_KEY in n or TAVILY_KEY in n for n in notes)
    settings = Settings(
        _env_file=None, genius_token=TOKEN, brave_api_key=BRAVE_KEY, tavily_api_key=TAVILY_KEY
    )  # type: ignore[call-arg]
    shown = caplog.text + " ".join(repr(p) for p in providers) + repr(settings) + str(settings)
    assert caplog.records  # httpx/urllib3 did log the requests
    for secret in (TOKEN, BRAVE_KEY, TAVILY_KEY):
        assert secret not in shown


# --- keys at rest -----------------------------------------------------------------------------------------

SECRET = SecretStr("a-long-secret-for-tests-0123456789")


def test_keys_are_encrypted_at_rest(db_url: str) -> None:
    with connect(db_url) as conn:
        provider_keys.set_key(conn, "genius", SecretStr(TOKEN), SECRET)
        value, encrypted = conn.execute(
            "SELECT value, encrypted FROM api_config WHERE key = 'lyrics.genius_token'"
        ).fetchone()
        assert encrypted and TOKEN not in value and value.startswith("gAAAA")  # a Fernet token
        assert provider_keys.stored_key(conn, "genius", SECRET).get_secret_value() == TOKEN
        with pytest.raises(provider_keys.ProviderKeyError, match="cannot be decrypted") as wrong:
            provider_keys.stored_key(conn, "genius", SecretStr("another-secret-of-enough-length"))
        assert TOKEN not in str(wrong.value)
        with pytest.raises(provider_keys.ProviderKeyError, match="MUSIC_SECRET_KEY"):
            provider_keys.set_key(conn, "brave", SecretStr(BRAVE_KEY), None)
        with pytest.raises(provider_keys.ProviderKeyError, match="unknown provider"):
            provider_keys.set_key(conn, "lrclib", SecretStr("x"), SECRET)
        with pytest.raises(provider_keys.ProviderKeyError, match="without spaces"):
            provider_keys.set_key(conn, "brave", SecretStr("two words"), SECRET)


def test_environment_wins_and_unreadable_keys_become_notes(db_url: str) -> None:
    with connect(db_url) as conn:
        provider_keys.set_key(conn, "genius", SecretStr(TOKEN), SECRET)
        provider_keys.set_key(conn, "tavily", SecretStr(TAVILY_KEY), SECRET)
        env = Settings(_env_file=None, secret_key=SECRET, tavily_api_key="tvly-from-env-000000")  # type: ignore[call-arg]
        resolved = provider_keys.resolve_keys(env, conn)
        assert resolved.keys["genius"].get_secret_value() == TOKEN  # type: ignore[union-attr]
        assert resolved.keys["tavily"].get_secret_value() == "tvly-from-env-000000"  # type: ignore[union-attr]
        assert resolved.keys["brave"] is None and resolved.notes == ()
        listed = {row["provider"]: row for row in provider_keys.list_masked(env, conn)}
        assert listed["genius"]["masked"] == "…" + TOKEN[-4:] and listed["genius"]["source"] == "api_config"
        assert listed["tavily"]["source"] == "environment" and listed["brave"]["source"] is None
        assert TOKEN not in str(listed) and TAVILY_KEY not in str(listed)
        other = Settings(_env_file=None, secret_key="a-different-secret-key-9876")  # type: ignore[call-arg]
        broken = provider_keys.resolve_keys(other, conn)
        assert broken.keys["genius"] is None and broken.notes[0].startswith(
            "genius: stored key cannot be decrypted"
        )
        assert provider_keys.delete_key(conn, "genius") and not provider_keys.delete_key(conn, "genius")


# --- pinned lyrics ----------------------------------------------------------------------------------------

TRACK = "f0" * 32


def _track_ready_for_lyrics(db_url: str) -> None:
    with connect(db_url) as conn:
        tracks.register(conn, track_id=TRACK, size=10, name="ask not.mp3", object_key="inbox/ask not.mp3",
                        folder=None, storage_path="s3://b/inbox/ask not.mp3", content_type="audio/mpeg")  # fmt: skip
        conn.execute(
            "UPDATE music_files SET artist = %s, title = %s WHERE id = %s",
            ("John F. Kennedy", "Ask Not", TRACK),
        )
        tracks.set_stage(conn, TRACK, "transcription", "done")


def test_pinned_lyrics_win_over_every_provider(db_url: str, store: ObjectStore, web: FakeWeb) -> None:
    _track_ready_for_lyrics(db_url)
    stage = lyrics_stage([genius(web)])
    with stage_context(store, db_url, run_id=None, timeout_seconds=60, workers=1) as ctx:
        assert stage(ctx, TRACK).details["source"] == "genius"  # unpinned: the provider's lyrics
        with connect(db_url) as conn:
            assert tracks.resolve_track(conn, TRACK[:8]) == TRACK
            lyrics_db.pin_lyrics(
                conn, TRACK, lyrics_db.pinned_from("my own words for this song\nsecond line", "u")
            )
        calls = len(web.states["genius"].requests)
        outcome = stage(ctx, TRACK)
    assert outcome.status == "done" and outcome.details["pinned"] is True
    assert len(web.states["genius"].requests) == calls  # no provider was asked
    with connect(db_url) as conn:
        current = lyrics_db.current_lyrics(conn, TRACK)
        assert current is not None and current["lyrics_text"] == "my own words for this song\nsecond line"
        pinned = conn.execute(
            "SELECT count(*) FROM lyrics WHERE file_id = %s AND pinned", (TRACK,)
        ).fetchone()[0]
        assert pinned == 1


def test_pinned_text_validation() -> None:
    lrc = lyrics_db.pinned_from("[00:01.00] first line\n[00:03.50] second line\n")
    assert lrc.text == "first line\nsecond line" and lrc.synced and lrc.source == "pinned"
    for junk in ("", "  \n ", "Lyrics not available for this song", "x" * 300_000):
        with pytest.raises(ValueError):
            lyrics_db.pinned_from(junk)


def test_pin_lyrics_command(db_url: str, services: object, tmp_path: Path, web: FakeWeb,
                            monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    from music_pipeline.cli import main

    _track_ready_for_lyrics(db_url)
    monkeypatch.setenv("MUSIC_DATA_DIR", str(tmp_path / "data"))
    for variable in ("MUSIC_SECRET_KEY", "MUSIC_API_TOKEN"):  # main() exports the data dir's secrets
        monkeypatch.delenv(variable, raising=False)
    text_file = tmp_path / "mine.txt"
    text_file.write_text("a pinned first line\na pinned second line\n", encoding="utf-8")
    cache = redis.Redis.from_url(services.redis_url)  # type: ignore[attr-defined]
    generation = int(cache.get(GENERATION_KEY) or 0)
    assert main(["pin-lyrics", TRACK[:10], "--text-file", str(text_file)]) == 0
    assert main(["pin-lyrics", TRACK[:10], "--url", web.pages + "/lyrics/kennedy/asknot.html"]) == 0
    assert int(cache.get(GENERATION_KEY) or 0) == generation + 2  # cached track details are stale
    assert main(["pin-lyrics", TRACK[:10], "--url", web.pages + "/missing"]) == 1
    assert main(["pin-lyrics", "ffffffff", "--text-file", str(text_file)]) == 1
    err = capsys.readouterr().err
    assert "no lyrics found" in err and "no track matches" in err
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT source, url, lyrics_text FROM lyrics WHERE file_id = %s AND pinned", (TRACK,)
        ).fetchall()
    assert len(rows) == 1 and rows[0][1] == web.pages + "/lyrics/kennedy/asknot.html"
    assert [line for line in rows[0][2].splitlines() if line] == JFK_LINES


def test_lyrics_asset_uses_the_key_stored_encrypted_in_api_config(
    resources: dict[str, object], db_url: str, web: FakeWeb, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dagster as dg

    from music_pipeline.defs.lyrics.assets import LyricsResource, lyrics
    from music_pipeline.defs.partitions import tracks_partitions

    _track_ready_for_lyrics(db_url)
    monkeypatch.setenv("MUSIC_SECRET_KEY", SECRET.get_secret_value())
    monkeypatch.setenv("MUSIC_GENIUS_URL", web.genius)
    monkeypatch.setenv("MUSIC_BRAVE_URL", web.brave)
    with connect(db_url) as conn:
        provider_keys.set_key(conn, "genius", SecretStr(TOKEN), SECRET)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(tracks_partitions.name, [TRACK])
    sources = LyricsResource(providers=["brave", "genius"])
    result = dg.materialize(
        [lyrics], partition_key=TRACK, instance=instance, resources={**resources, "lyrics_sources": sources}
    )
    assert result.success
    assert web.states["brave"].requests == []  # no Brave key anywhere: skipped, not called
    assert web.states["genius"].requests[0].headers["authorization"] == f"Bearer {TOKEN}"
    with connect(db_url) as conn:
        source, metadata = conn.execute(
            "SELECT source, metadata FROM lyrics WHERE file_id = %s", (TRACK,)
        ).fetchone()
        status, warnings = conn.execute(
            "SELECT status, warnings FROM track_stages WHERE file_id = %s AND stage = 'lyrics'", (TRACK,)
        ).fetchone()
    note = "brave skipped: no API key (MUSIC_BRAVE_API_KEY or api_config)"
    assert (source, status) == ("genius", "done") and note in metadata["notes"] and note in warnings


def test_provider_key_command_stores_encrypted_and_lists_masked(
    db_url: str, services: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    import io

    from music_pipeline.cli import main

    monkeypatch.setenv("MUSIC_DATA_DIR", str(tmp_path / "data"))
    for variable in ("MUSIC_SECRET_KEY", "MUSIC_API_TOKEN"):  # main() exports the data dir's secrets
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(BRAVE_KEY + "\n"))
    assert main(["provider-key", "set", "brave"]) == 0  # no MUSIC_SECRET_KEY: the data dir's, as `up`
    assert os.environ["MUSIC_SECRET_KEY"] == load_or_create_secrets(tmp_path / "data")["secret_key"]
    monkeypatch.setenv("MUSIC_SECRET_KEY", SECRET.get_secret_value())
    monkeypatch.setattr("sys.stdin", io.StringIO(BRAVE_KEY + "\n"))
    assert main(["provider-key", "set", "brave"]) == 0
    assert main(["provider-key", "list"]) == 0
    out = capsys.readouterr()
    assert BRAVE_KEY not in out.out + out.err and "…" + BRAVE_KEY[-4:] in out.out
    with connect(db_url) as conn:
        assert provider_keys.stored_key(conn, "brave", SECRET).get_secret_value() == BRAVE_KEY  # type: ignore[union-attr]
    assert main(["provider-key", "delete", "brave"]) == 0 and main(["provider-key", "delete", "brave"]) == 1


def test_lyrics_found_before_are_kept_while_a_provider_is_down(
    db_url: str, store: ObjectStore, web: FakeWeb
) -> None:
    """ "Not found" is no answer while a provider could not be asked: the lyrics, and the comparison
    and vectors that hang on them, stay until a provider really answers."""
    _track_ready_for_lyrics(db_url)
    with stage_context(store, db_url, run_id=None, timeout_seconds=60, workers=1) as ctx:
        assert lyrics_stage([genius(web)])(ctx, TRACK).details["source"] == "genius"
        down = lyrics_stage([genius(web, token="wrong")])(ctx, TRACK)
    assert down.status == "done" and down.details == {"kept": True}
    assert down.warnings[0] == "genius unavailable: HTTPStatusError"
    with connect(db_url) as conn:
        current = lyrics_db.current_lyrics(conn, TRACK)
    assert current is not None and current["source"] == "genius"


def test_a_provider_that_breaks_is_a_note_and_the_next_one_is_asked(web: FakeWeb) -> None:
    class Broken:
        name = "lrclib"

        def fetch(self, query: LyricsQuery) -> None:
            raise ValueError("Expecting value: line 1 column 1 (char 0)")  # HTML where JSON was due

    found, notes = find_lyrics([Broken(), genius(web)], JFK)  # type: ignore[list-item]
    assert found is not None and found.source == "genius"
    assert notes == ["lrclib unavailable: ValueError"]


@pytest.mark.parametrize(
    "page", ["<a " * 300_000, "1 <b 2 " * 400_000, "<![ CDATA[x]]>", "text <![ inside >"]
)
def test_hostile_pages_are_parsed_in_bounded_time_without_errors(page: str) -> None:
    started = time.monotonic()
    assert extract_lyrics(page) is None
    assert time.monotonic() - started < 2 * PARSE_SECONDS + 1  # was minutes to hours for the first two


def test_a_page_that_redirects_to_another_host_is_not_followed() -> None:
    """Search results name pages on any site; one that redirects elsewhere (a loopback service, say)
    is dropped, while redirects on the same site (https, www.) are followed."""
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        if request.url.host == "lyrics.example" and request.url.path == "/song":
            return httpx.Response(302, headers={"location": "http://127.0.0.1:3000/graphql?query=x"})
        if request.url.host == "lyrics.example":
            return httpx.Response(301, headers={"location": "https://www.lyrics.example/moved"})
        return httpx.Response(
            200, text="<div data-lyrics-container='true'>" + "<br>".join(["la la"] * 5) + "</div>"
        )

    http = ProviderHttp("pages", transport=httpx.MockTransport(handler), retries=0, min_interval=0)
    assert page_lyrics(http, "http://lyrics.example/song") is None
    assert asked == ["http://lyrics.example/song"]  # the loopback address was never requested
    assert page_lyrics(http, "http://lyrics.example/other") is not None
    assert asked[1:] == ["http://lyrics.example/other", "https://www.lyrics.example/moved"]
