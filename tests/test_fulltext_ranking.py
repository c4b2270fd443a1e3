"""Full-text search at library scale: candidates gathered by selective words, ranked by inverse
document frequency and proximity, over transcripts, official lyrics and names (real PostgreSQL)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from music_api.main import create_app
from music_api.term_stats import read_search_statistics
from music_core.embedded import ServiceEndpoints
from music_core.storage import ObjectStore
from tests.test_api import AUTH, api_settings, flush_cache

COMMON = ["love", "baby", "night", "heart"]  # in every song
FILLER = [f"word{i}" for i in range(300)]
TARGET = "a" * 64
LYRICS_ONLY = "b" * 64
NAMED = "c" * 64
ACCENTED = "d" * 64


def _track_id(n: int) -> str:
    return hashlib.sha256(f"fulltext-{n}".encode()).hexdigest()


def _insert_track(conn: psycopg.Connection, track_id: str, name: str, transcript: str | None) -> None:
    conn.execute(
        "INSERT INTO music_files (id, original_filename, storage_path, file_size, title)"
        " VALUES (%s, %s, %s, 1, %s)",
        (track_id, name, f"originals/{track_id}", name.rsplit(".", 1)[0]),
    )
    if transcript is not None:
        conn.execute(
            "INSERT INTO transcriptions (file_id, transcription_text, model_id) VALUES (%s, %s, 'test')",
            (track_id, transcript),
        )


@pytest.fixture(scope="module")
def library(services: ServiceEndpoints) -> dict[str, str]:
    """300 songs that all sing the common words, a few with 'mirror', one that sings 'whisper in the
    mirror', one whose official lyrics alone hold 'zanzibar', one named after a rare word."""
    rng = random.Random(5)
    with psycopg.connect(services.database_url) as conn:
        conn.execute("TRUNCATE music_files, search_history CASCADE")
        for n in range(300):
            words = COMMON * 3 + rng.sample(FILLER, 40)
            if n % 30 == 0:  # 10 songs mention the mirror once, far from any whisper
                words += ["mirror"] + rng.sample(FILLER, 20) + ["whisper"]
            rng.shuffle(words[: len(COMMON) * 3])
            _insert_track(conn, _track_id(n), f"song {n}.mp3", " ".join(words))
        _insert_track(conn, TARGET, "the target.mp3",
                      "love baby " + " ".join(rng.sample(FILLER, 30)) + " I whisper in the mirror every night")  # fmt: skip
        _insert_track(conn, LYRICS_ONLY, "lyrics only.mp3", "love baby night heart " * 5)
        conn.execute(
            "INSERT INTO lyrics (file_id, source, lyrics_text) VALUES (%s, 'sidecar', %s)",
            (LYRICS_ONLY, "Sailing to Zanzibar tonight\nlove and baby"),
        )
        _insert_track(conn, NAMED, "Quixotic Serenade.mp3", None)
        _insert_track(conn, ACCENTED, "Mötley Crüe - Ærøskøbing.mp3", "un café à São Paulo, straße")
        conn.execute("ANALYZE music_files, transcriptions, lyrics")
    return {"target": TARGET}


@pytest.fixture
def client(services: ServiceEndpoints, store: ObjectStore, library: dict[str, str]) -> Iterator[TestClient]:
    flush_cache(services)
    with TestClient(create_app(api_settings(services, store.bucket), warm_up=False)) as c:
        yield c


def _fulltext(client: TestClient, q: str, limit: int = 10) -> list[dict]:
    response = client.get("/search", params={"q": q, "mode": "fulltext", "limit": limit}, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()["results"]


def test_statistics_come_from_postgresql(services: ServiceEndpoints, library: dict[str, str]) -> None:
    with psycopg.connect(services.database_url) as conn:
        stats = read_search_statistics(conn)
    assert stats.content.fractions["love"] > 0.9  # stemmed English lexemes
    assert stats.content.fraction("zanzibar") == stats.content.unlisted_ceiling
    assert stats.content.unlisted_ceiling is not None and stats.content.unlisted_ceiling < 0.2
    assert stats.names.fractions.get("song", 0) > 0.9  # unstemmed names


def test_rare_words_sung_together_rank_first(client: TestClient) -> None:
    results = _fulltext(client, "love baby whisper in the mirror", limit=20)
    assert results[0]["track_id"] == TARGET
    assert "«whisper»" in results[0]["snippet"] and "«mirror»" in results[0]["snippet"]
    # Every other hit holds a selective word; songs with only the common words do not crowd in.
    with_mirror = {_track_id(n) for n in range(0, 300, 30)}
    assert {r["track_id"] for r in results[1:]} <= with_mirror
    assert len(results) == 1 + len(with_mirror)
    assert results[0]["score"] > results[1]["score"]


def test_official_lyrics_are_searched(client: TestClient) -> None:
    results = _fulltext(client, "zanzibar")
    assert [r["track_id"] for r in results] == [LYRICS_ONLY]
    assert "«Zanzibar»" in results[0]["snippet"]


def test_names_are_searched_unstemmed(client: TestClient) -> None:
    assert [r["track_id"] for r in _fulltext(client, "quixotic serenade")] == [NAMED]


@pytest.mark.parametrize(
    "q", ["motley crue", "MÖTLEY", "Crüe", "aeroskobing", "cafe sao paulo", "CAFÉ", "strasse", "ｃａｆｅ"]
)
def test_accents_are_ignored_on_either_side(client: TestClient, q: str) -> None:
    assert [r["track_id"] for r in _fulltext(client, q)] == [ACCENTED]


def test_a_match_on_a_folded_word_shows_its_passage_highlighted(client: TestClient) -> None:
    [hit] = _fulltext(client, "sao paulo")
    assert "«sao» «paulo»" in hit["snippet"].lower()


@pytest.mark.parametrize("q", ["crue", "MÖTLEY CRÜE", "Ærø", "aero"])
def test_the_library_filter_ignores_accents_too(client: TestClient, q: str) -> None:
    response = client.get("/tracks", params={"q": q}, headers=AUTH)
    assert response.status_code == 200, response.text
    assert [t["id"] for t in response.json()["items"]] == [ACCENTED]


@pytest.mark.parametrize("q", ["%", "_", "\\", "％"])  # wildcards are literal, full-width ones too
def test_the_library_filter_takes_wildcards_literally(client: TestClient, q: str) -> None:
    response = client.get("/tracks", params={"q": q}, headers=AUTH)
    assert response.status_code == 200 and response.json()["total"] == 0


def test_common_words_alone_find_songs_holding_all_of_them(
    client: TestClient, services: ServiceEndpoints
) -> None:
    results = _fulltext(client, "love heart", limit=20)
    assert len(results) == 20
    with psycopg.connect(services.database_url) as conn:
        texts = dict(conn.execute(
            "SELECT file_id, transcription_text FROM transcriptions WHERE file_id = ANY(%s)",
            ([r["track_id"] for r in results],),
        ).fetchall())  # fmt: skip
    assert all("love" in texts[r["track_id"]] and "heart" in texts[r["track_id"]] for r in results)


def test_capped_gathering_keeps_selective_words_and_common_word_queries(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from music_api import fulltext

    monkeypatch.setattr(fulltext, "GATHER_CAP_PER_POOL", 1)  # 50 songs per gathering query and table
    common = _fulltext(client, "love heart", limit=20)  # 300 songs hold both words; 50 are gathered
    assert len(common) == 20
    rare = _fulltext(client, "love baby whisper in the mirror", limit=20)  # 'mirror' is in 11: all kept
    assert rare[0]["track_id"] == TARGET and len(rare) == 11


@pytest.mark.parametrize("q", ["o'brien \\ mirror", "'':* | !love & (night", "the and of", "♫ ♪"])
def test_operator_characters_and_stop_words_are_harmless(client: TestClient, q: str) -> None:
    assert isinstance(_fulltext(client, q), list)
