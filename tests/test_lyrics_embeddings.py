"""Official lyrics are embedded too: semantic search finds a song by words only its lyrics contain,
through pgvector (before any index exists) and through the FAISS index built from pgvector."""

from __future__ import annotations

import uuid
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from fastapi.testclient import TestClient

from music_api.main import create_app
from music_core import lyrics_stages, stages
from music_core import vector_index as faiss_index
from music_core.embed.embedder import SentenceEmbedder, describe_model
from music_core.embedded import ServiceEndpoints
from music_core.lyrics.registry import build_providers
from music_core.storage import ObjectStore
from music_pipeline import definitions
from music_pipeline.oneshot import process_paths
from tests import media
from tests.conftest import APP_TABLES
from tests.test_api import AUTH, api_settings, flush_cache

SONG = "Pop/track one.wav"  # the JFK speech; its sidecar .lrc carries lyrics the speech never says
OTHER = "librivox_0870.wav"  # no lyrics at all
VERSE = "ask not what your country can do for you, ask what you can do for your country"
UNIQUE = "the lighthouse keeper whistles to the seagulls under a violet marmalade moon"
# ~130 words of verse first, so the unique line lands in a later chunk of a chunked text.
LYRICS_LINES = [VERSE] * 8 + [UNIQUE]
QUERY = "a lighthouse keeper whistling at seagulls in the moonlight"
PINNED = "grandmother knits woollen scarves for penguins at the south pole"
PINNED_QUERY = "knitting scarves for penguins"


def lrc(lines: list[str]) -> str:
    return "".join(f"[00:{i * 3:02d}.00] {line}\n" for i, line in enumerate(lines))


@pytest.fixture(scope="module")
def library(services: ServiceEndpoints, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """name -> track id, after every per-track stage ran for real (one module-wide bucket)."""
    with psycopg.connect(services.database_url) as conn:
        conn.execute(f"TRUNCATE {APP_TABLES} CASCADE")  # noqa: S608 - fixed table list
    store = ObjectStore(services.s3_endpoint, services.s3_access_key, services.s3_secret_key,
                        bucket=f"lyr-{uuid.uuid4().hex[:10]}")  # fmt: skip
    store.ensure_bucket()
    folder = tmp_path_factory.mktemp("lyrics-library")
    (folder / "Pop").mkdir()
    (folder / SONG).write_bytes(media.SPEECH_WAV.read_bytes())
    (folder / SONG).with_suffix(".lrc").write_text(lrc(LYRICS_LINES))
    (folder / OTHER).write_bytes((media.DEMO / OTHER).read_bytes())
    resources = definitions.build_resources(api_settings(services, store.bucket))
    rows = process_paths([str(folder)], store=store, database_url=services.database_url,
                         instance=dg.DagsterInstance.ephemeral(), resources=resources, batch=10)  # fmt: skip
    assert all(r["stages"]["lyrics"] in ("done", "skipped") for r in rows), rows
    ids = {str(Path(r["file"]).relative_to(folder)): r["track_id"] for r in rows}
    ids["bucket"] = store.bucket
    return ids


def lyrics_rows(db_url: str, track_id: str) -> list[tuple[int, str, str]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT chunk, model_id, content FROM embeddings WHERE file_id = %s AND source = 'lyrics'"
            " ORDER BY chunk",
            (track_id,),
        ).fetchall()


def semantic_hits(services: ServiceEndpoints, bucket: str, query: str) -> tuple[list[dict], int | None]:
    flush_cache(services)  # no cached answer from an earlier test
    with TestClient(create_app(api_settings(services, bucket), warm_up=False)) as c:
        response = c.get("/search", params={"q": query, "mode": "semantic", "limit": 5}, headers=AUTH)
        assert response.status_code == 200, response.text
        return response.json()["results"], c.app.state.semantic.version  # type: ignore[attr-defined]


def test_lyrics_are_chunked_and_embedded_beside_the_transcript(
    services: ServiceEndpoints, library: dict[str, str]
) -> None:
    song, other = library[SONG], library[OTHER]
    rows = lyrics_rows(services.database_url, song)
    assert len(rows) >= 2  # long lyrics are chunked like transcripts
    assert {r[1] for r in rows} == {describe_model(None)}
    assert UNIQUE in rows[-1][2] and UNIQUE not in rows[0][2]
    assert lyrics_rows(services.database_url, other) == []
    with psycopg.connect(services.database_url) as conn:
        transcript = conn.execute(
            "SELECT transcription_text FROM transcriptions WHERE file_id = %s", (song,)
        ).fetchone()[0]
        sources = dict(
            conn.execute(
                "SELECT source, count(*) FROM embeddings WHERE file_id = %s GROUP BY source", (song,)
            ).fetchall()
        )
        details = conn.execute(
            "SELECT details FROM track_stages WHERE file_id = %s AND stage = 'lyrics'", (song,)
        ).fetchone()[0]
    assert "country" in transcript.lower() and "lighthouse" not in transcript.lower()
    assert sources["transcript"] >= 1 and sources["lyrics"] == len(rows)
    assert details["lyrics_chunks"] == len(rows) and details["source"] == "sidecar"


def test_pgvector_finds_the_song_by_words_only_its_lyrics_contain(
    services: ServiceEndpoints, library: dict[str, str]
) -> None:
    hits, version = semantic_hits(services, library["bucket"], QUERY)
    assert version is None  # no FAISS index in this bucket yet: pgvector answered
    assert hits[0]["track_id"] == library[SONG]
    assert "lighthouse keeper" in hits[0]["snippet"]


def build_index(services: ServiceEndpoints, bucket: str) -> faiss_index.IndexManifest:
    """Materialise vector_index for real; its check compares the index with pgvector."""
    settings = api_settings(services, bucket)
    result = dg.materialize(
        [definitions.vector_index],
        resources=definitions.build_resources(settings),
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    assert all(check.passed for check in result.get_asset_check_evaluations())
    store = ObjectStore(services.s3_endpoint, services.s3_access_key, services.s3_secret_key, bucket=bucket)
    manifest = faiss_index.load_manifest(store, describe_model(None))
    assert manifest is not None
    return manifest


def test_faiss_index_holds_lyrics_vectors_and_finds_the_song(
    services: ServiceEndpoints, library: dict[str, str]
) -> None:
    manifest = build_index(services, library["bucket"])
    with psycopg.connect(services.database_url) as conn:
        total = conn.execute("SELECT count(*) FROM embeddings").fetchone()[0]
    assert manifest.count == total and total > len(lyrics_rows(services.database_url, library[SONG]))
    hits, version = semantic_hits(services, library["bucket"], QUERY)
    assert version == manifest.version
    assert hits[0]["track_id"] == library[SONG]
    assert "lighthouse keeper" in hits[0]["snippet"]


def test_lyrics_vectors_follow_the_current_lyrics(
    services: ServiceEndpoints, library: dict[str, str]
) -> None:
    """Lyrics gone -> vectors gone; a pinned choice -> its words become searchable."""
    song = library[SONG]
    store = ObjectStore(services.s3_endpoint, services.s3_access_key, services.s3_secret_key,
                        bucket=library["bucket"])  # fmt: skip
    embedder = SentenceEmbedder()
    with stages.stage_context(
        store, services.database_url, run_id=None, timeout_seconds=60, workers=1
    ) as ctx:
        gone = lyrics_stages.lyrics_stage([], embedder, 128)(ctx, song)
        assert gone.status == "skipped" and gone.details["lyrics_chunks"] == 0
        assert lyrics_rows(services.database_url, song) == []
        with psycopg.connect(services.database_url) as conn:  # what pinning a user's choice stores
            conn.execute(
                "INSERT INTO lyrics (file_id, source, lyrics_text, pinned) VALUES (%s, 'manual', %s, true)",
                (song, PINNED),
            )
        providers = build_providers(
            ["tags", "sidecar"], store, cache_url=None, lrclib_url="http://127.0.0.1:9"
        )
        pinned = lyrics_stages.lyrics_stage(providers, embedder, 128)(ctx, song)
    assert pinned.status == "done" and pinned.details["pinned"] and pinned.details["lyrics_chunks"] == 1
    assert [r[2] for r in lyrics_rows(services.database_url, song)] == [PINNED]
    manifest = build_index(services, library["bucket"])  # the index drops the old vectors, adds the new
    hits, version = semantic_hits(services, library["bucket"], PINNED_QUERY)
    assert version == manifest.version
    assert hits[0]["track_id"] == song and "penguins" in hits[0]["snippet"]
    hits, _ = semantic_hits(services, library["bucket"], QUERY)
    assert all("lighthouse" not in (h["snippet"] or "") for h in hits)
