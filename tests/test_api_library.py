"""Track detail, search and streaming over a library the real pipeline processed."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket as pysocket
import stat
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from fastapi.testclient import TestClient

from music_api.main import create_app
from music_api.search_client import RemoteSemanticIndex
from music_api.search_protocol import recv_frame, send_frame, unpack_lookup
from music_core.embedded import ServiceEndpoints
from music_core.storage import ObjectStore
from music_pipeline import definitions
from music_pipeline.oneshot import process_paths
from tests import media
from tests.conftest import APP_TABLES
from tests.test_api import AUTH, api_settings, flush_cache

MP3 = 'Rock/it\'s "live" ünï.mp3'  # the same speech as jfk.wav, another encoding
JFK = ("jfk.wav", MP3)
FILES = {"jfk.wav": media.SPEECH_WAV, "librivox_0870.wav": media.DEMO / "librivox_0870.wav",
         "Rock/it's \"live\" ünï.mp3": media.SPEECH_MP3}  # fmt: skip


@pytest.fixture(scope="module")
def library(services: ServiceEndpoints, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """name -> track id, after every per-track stage ran for real."""
    with psycopg.connect(services.database_url) as conn:
        conn.execute(f"TRUNCATE {APP_TABLES} CASCADE")  # noqa: S608 - fixed table list
    store = ObjectStore(services.s3_endpoint, services.s3_access_key, services.s3_secret_key,
                        bucket=f"lib-{uuid.uuid4().hex[:10]}")  # fmt: skip
    store.ensure_bucket()
    folder = tmp_path_factory.mktemp("library")
    for name, src in FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(src.read_bytes())
    resources = definitions.build_resources(api_settings(services, store.bucket))
    rows = process_paths([str(folder)], store=store, database_url=services.database_url,
                         instance=dg.DagsterInstance.ephemeral(), resources=resources, batch=10)  # fmt: skip
    assert all(r["stages"]["embedding"] == "done" for r in rows), rows
    ids = {str(Path(r["file"]).relative_to(folder)): r["track_id"] for r in rows}
    ids["bucket"] = store.bucket
    return ids


@pytest.fixture
def client(services: ServiceEndpoints, library: dict[str, str]) -> Iterator[TestClient]:
    flush_cache(services)
    with TestClient(create_app(api_settings(services, library["bucket"]), warm_up=False)) as c:
        yield c


def test_track_detail(client: TestClient, library: dict[str, str]) -> None:
    body = client.get(f"/tracks/{library['jfk.wav']}", headers=AUTH).json()
    assert body["filename"] == "jfk.wav"
    assert body["duration"] == pytest.approx(11.0, abs=0.05)
    assert set(body["stages"]) == {"audio_file", "converted_audio", "transcription", "embedding", "lyrics",
                                   "comparison"}  # fmt: skip
    assert all(
        body["stages"][s]["status"] == "done" for s in ("audio_file", "converted_audio", "transcription")
    )
    assert body["stages"]["lyrics"]["error"] == "no lyrics found (tags, sidecar)"
    transcription = body["transcription"]
    assert "what your country can do for you" in transcription["text"].lower()
    assert len(transcription["words"]) >= 20 and transcription["segments"]
    assert body["aliases"][0]["name"] == "jfk.wav"


@pytest.mark.parametrize("bad", ["0" * 63, "../../etc/passwd", "G" * 64, "0" * 64 + "'--"])
def test_malformed_ids_are_client_errors(client: TestClient, bad: str) -> None:
    assert client.get(f"/tracks/{bad}", headers=AUTH).status_code in {404, 422}
    assert client.get(f"/tracks/{bad}/audio", headers=AUTH).status_code in {404, 422}


def test_unknown_track_is_404(client: TestClient) -> None:
    assert client.get(f"/tracks/{'0' * 64}", headers=AUTH).status_code == 404
    assert client.get(f"/tracks/{'0' * 64}/audio", headers=AUTH).status_code == 404


@pytest.mark.parametrize(
    ("mode", "query", "expected"),
    [
        ("fulltext", "country", JFK),
        ("fulltext", "dashwood leisure", ("librivox_0870.wav",)),
        ("fulltext", "live", (MP3,)),  # the file name is searchable too
        ("semantic", "what could I do for my nation", JFK),
        ("semantic", "a man considering his financial means", ("librivox_0870.wav",)),
        ("hybrid", "ask knot what you're country can do for ya", JFK),  # misheard lyric
    ],
)
def test_search_modes(
    client: TestClient, library: dict[str, str], mode: str, query: str, expected: tuple[str, ...]
) -> None:
    response = client.get("/search", params={"q": query, "mode": mode}, headers=AUTH)
    assert response.status_code == 200
    results = response.json()["results"]
    wanted = {library[k] for k in expected}
    assert {r["track_id"] for r in results[: len(wanted)]} == wanted


def test_searches_are_logged_and_hostile_text_is_harmless(
    client: TestClient, services: ServiceEndpoints, library: dict[str, str]
) -> None:
    hostile = "'; DROP TABLE music_files; -- <script>alert(1)</script>"
    assert client.get("/search", params={"q": hostile}, headers=AUTH).status_code == 200
    with psycopg.connect(services.database_url) as conn:
        logged = conn.execute(
            "SELECT query, mode FROM search_history ORDER BY created_at DESC LIMIT 1"
        ).fetchone()
        assert conn.execute("SELECT count(*) FROM music_files").fetchone()[0] == 3
    assert logged == (hostile, "hybrid")


@pytest.mark.parametrize(
    "params", [{"q": ""}, {"q": "x" * 501}, {"q": "a", "limit": 10**9}, {"q": "a", "mode": "x"}]
)
def test_bad_search_requests(client: TestClient, params: dict[str, object]) -> None:
    assert client.get("/search", params=params, headers=AUTH).status_code == 422


def test_semantic_search_uses_the_faiss_index_once_built(
    services: ServiceEndpoints, library: dict[str, str]
) -> None:
    settings = api_settings(services, library["bucket"])
    result = dg.materialize(
        [definitions.vector_index],
        resources=definitions.build_resources(settings),
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    with TestClient(create_app(settings, warm_up=False)) as c:
        hits = c.get("/search", params={"q": "ask what you can do", "mode": "semantic"}, headers=AUTH).json()
        assert c.app.state.semantic.version == 1  # type: ignore[attr-defined]
    assert {h["track_id"] for h in hits["results"][:2]} == {library[k] for k in JFK}


# --- streaming ---------------------------------------------------------------------------------


def test_full_and_ranged_original(client: TestClient, library: dict[str, str]) -> None:
    url = f"/tracks/{library['jfk.wav']}/audio"
    data = media.SPEECH_WAV.read_bytes()
    full = client.get(url, headers=AUTH)
    assert full.status_code == 200 and full.content == data
    assert full.headers["accept-ranges"] == "bytes" and full.headers["content-type"] == "audio/x-wav"
    part = client.get(url, headers={**AUTH, "Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == data[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
    tail = client.get(url, headers={**AUTH, "Range": "bytes=-100"})
    assert tail.content == data[-100:]


def test_multiple_ranges_are_multipart(client: TestClient, library: dict[str, str]) -> None:
    data = media.SPEECH_WAV.read_bytes()
    r = client.get(f"/tracks/{library['jfk.wav']}/audio", headers={**AUTH, "Range": "bytes=0-9,100-109"})
    assert r.status_code == 206
    boundary = re.search(r"boundary=(\w+)", r.headers["content-type"]).group(1)  # type: ignore[union-attr]
    assert int(r.headers["content-length"]) == len(r.content)
    parts = [p for p in r.content.split(f"--{boundary}".encode()) if b"Content-Range" in p]
    bodies = [p.split(b"\r\n\r\n", 1)[1][:-2] for p in parts]
    assert bodies == [data[0:10], data[100:110]]


def test_unsatisfiable_and_if_range_and_head(client: TestClient, library: dict[str, str]) -> None:
    url = f"/tracks/{library['jfk.wav']}/audio"
    size = media.SPEECH_WAV.stat().st_size
    bad = client.get(url, headers={**AUTH, "Range": f"bytes={size}-"})
    assert bad.status_code == 416 and bad.headers["content-range"] == f"bytes */{size}"
    etag = client.head(url, headers=AUTH).headers["etag"]
    stale = client.get(url, headers={**AUTH, "Range": "bytes=0-9", "If-Range": '"old"'})
    assert stale.status_code == 200 and len(stale.content) == size
    fresh = client.get(url, headers={**AUTH, "Range": "bytes=0-9", "If-Range": etag})
    assert fresh.status_code == 206 and len(fresh.content) == 10
    head = client.head(url, headers={**AUTH, "Range": "bytes=0-9"})
    assert head.status_code == 206 and head.content == b"" and head.headers["content-length"] == "10"
    garbage = client.get(url, headers={**AUTH, "Range": "bytes=abc"})
    assert garbage.status_code == 200  # an unparseable Range is ignored, as RFC 9110 says


def test_converted_audio_and_safe_content_disposition(client: TestClient, library: dict[str, str]) -> None:
    r = client.get(f"/tracks/{library[MP3]}/audio",
                   params={"version": "converted"}, headers={**AUTH, "Range": "bytes=0-3"})  # fmt: skip
    assert r.status_code == 206 and r.content == b"fLaC"
    assert r.headers["content-type"] == "audio/flac"
    disposition = r.headers["content-disposition"]
    assert disposition.isascii() and "\r" not in disposition and "\n" not in disposition
    assert "filename*=UTF-8''it%27s%20%22live%22%20%C3%BCn%C3%AF.16k.flac" in disposition
    assert 'filename="it\'s _live_ _n_.16k.flac"' in disposition


def test_streaming_needs_the_token(client: TestClient, library: dict[str, str]) -> None:
    assert client.get(f"/tracks/{library['jfk.wav']}/audio").status_code == 401


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"genre": "ROCK"}, {MP3}),
        ({"file_type": ["wav"]}, {"jfk.wav", "librivox_0870.wav"}),
        ({"file_type": [".MP3", "flac"]}, {MP3}),
        ({"min_duration": 10}, {"jfk.wav", MP3}),
        ({"max_duration": 10}, {"librivox_0870.wav"}),
        ({"has_transcription": True}, {"jfk.wav", "librivox_0870.wav", MP3}),
        ({"has_lyrics": True}, set()),
        ({"q": "LIBRI"}, {"librivox_0870.wav"}),
        ({"q": "%"}, set()),  # a literal percent sign, not a wildcard
        ({"min_size": 300_000}, {"jfk.wav"}),
        ({"uploaded_after": "2999-01-01T00:00:00Z"}, set()),
        ({"uploaded_before": "2999-01-01T00:00:00Z", "genre": ["rock", "jazz"]}, {MP3}),
    ],
)
def test_library_filters(
    client: TestClient, library: dict[str, str], params: dict[str, object], expected: set[str]
) -> None:
    body = client.get("/tracks", params=params, headers=AUTH).json()
    assert {i["id"] for i in body["items"]} == {library[k] for k in expected}
    assert body["total"] == len(expected)


def test_library_sorting(client: TestClient, library: dict[str, str]) -> None:
    by_name = client.get("/tracks", params={"sort": "filename", "order": "asc"}, headers=AUTH).json()
    assert [i["filename"] for i in by_name["items"]] == ["jfk.wav", "librivox_0870.wav", MP3]
    # Without an order: names A to Z, sizes and dates largest/newest first.
    default = client.get("/tracks", params={"sort": "filename"}, headers=AUTH).json()
    assert [i["filename"] for i in default["items"]] == ["jfk.wav", "librivox_0870.wav", MP3]
    newest = client.get("/tracks", headers=AUTH).json()["items"]
    assert [i["uploaded_at"] for i in newest] == sorted((i["uploaded_at"] for i in newest), reverse=True)
    by_size = client.get("/tracks", params={"sort": "size", "order": "desc"}, headers=AUTH).json()
    sizes = [i["size"] for i in by_size["items"]]
    assert sizes == sorted(sizes, reverse=True)
    for key in ("genre", "duration", "transcribed", "uploaded"):
        assert client.get("/tracks", params={"sort": key}, headers=AUTH).status_code == 200
    for order in ("asc", "desc"):  # unknown genres come last in either direction
        items = client.get("/tracks", params={"sort": "genre", "order": order}, headers=AUTH).json()["items"]
        genres = [i["genre"] for i in items]
        known = [g for g in genres if g is not None]
        assert known and None in genres
        assert genres == sorted(known, key=str.lower, reverse=order == "desc") + [None] * (
            len(genres) - len(known)
        )
    assert client.get("/tracks", params={"sort": "id; DROP TABLE x"}, headers=AUTH).status_code == 422
    assert client.get("/tracks", params={"min_size": -1}, headers=AUTH).status_code == 422


def test_export_zip_layout_and_contents(client: TestClient, library: dict[str, str]) -> None:
    import io
    import json
    import zipfile

    ids = [library["jfk.wav"], library[MP3]]
    r = client.post("/export", json={"ids": ids, "format": "zip"}, headers=AUTH)
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert "attachment" in r.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        names = z.namelist()
        meta = json.loads(z.read("export_metadata.json"))
        original = next(n for n in names if n.endswith("/original/jfk.wav"))
        assert z.read(original) == media.SPEECH_WAV.read_bytes()
        assert any(n.startswith("Rock/") and "/converted/" in n and n.endswith(".16k.flac") for n in names)
        transcript = next(n for n in names if n.startswith("Unknown genre/") and "/transcription/" in n)
        assert "country" in z.read(transcript).decode().lower()
    assert {t["track_id"] for t in meta["tracks"]} == set(ids)
    assert all(".." not in n.split("/") and not n.startswith("/") for n in names)


def test_export_folders_are_one_portable_name_per_level(
    client: TestClient, library: dict[str, str], services: ServiceEndpoints
) -> None:
    """Tags are untrusted: "AC/DC" must not become two folders, nor "a:b?" a name Windows refuses."""
    import io
    import zipfile

    track = library["jfk.wav"]
    with psycopg.connect(services.database_url) as conn:
        before = conn.execute("SELECT genre, title FROM music_files WHERE id = %s", (track,)).fetchone()
        conn.execute(
            "UPDATE music_files SET genre = %s, title = %s WHERE id = %s", ("../..", "AC/DC: a\\b*?", track)
        )
    try:
        r = client.post("/export", json={"ids": [track], "include": ["original"]}, headers=AUTH)
    finally:
        with psycopg.connect(services.database_url) as conn:
            conn.execute("UPDATE music_files SET genre = %s, title = %s WHERE id = %s", (*before, track))
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        names = z.namelist()
    assert names == [f".._/AC_DC_ a_b__ [{track[:8]}]/original/jfk.wav", "export_metadata.json"]


def test_export_tar_gz_with_a_subset(client: TestClient, library: dict[str, str]) -> None:
    import io
    import tarfile

    r = client.post(
        "/export", json={"ids": [library["librivox_0870.wav"]], "format": "tar.gz", "include": ["transcription"]},
        headers=AUTH,
    )  # fmt: skip
    assert r.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(r.content), mode="r:gz") as t:
        names = t.getnames()
    assert len(names) == 2 and "export_metadata.json" in names
    assert any(n.endswith("/transcription/librivox_0870.txt") for n in names)


@pytest.mark.parametrize(
    "body",
    [{"ids": []}, {"ids": ["../../etc"]}, {"ids": ["0" * 64], "format": "rar"}, {"ids": ["0" * 64], "include": ["x"]},
     {"ids": ["0" * 64] * 10_001}],
)  # fmt: skip
def test_bad_export_requests(client: TestClient, body: dict[str, object]) -> None:
    assert client.post("/export", json=body, headers=AUTH).status_code == 422


def test_export_of_unknown_tracks_is_404(client: TestClient) -> None:
    assert client.post("/export", json={"ids": ["f" * 64]}, headers=AUTH).status_code == 404


def test_transcription_download(client: TestClient, library: dict[str, str]) -> None:
    r = client.get(f"/tracks/{library['jfk.wav']}/transcription.txt", headers=AUTH)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert "country" in r.text.lower()
    assert client.get(f"/tracks/{'f' * 64}/transcription.txt", headers=AUTH).status_code == 404


def test_storage_stats_and_analytics(client: TestClient, library: dict[str, str]) -> None:
    stats = client.get("/storage/stats", headers=AUTH).json()
    assert stats["bucket"]["originals"]["objects"] == 3
    assert stats["bucket"]["converted"]["objects"] == 3
    assert stats["bucket"]["originals"]["bytes"] == sum(p.stat().st_size for p in FILES.values())
    assert stats["database"]["bytes"] > 0 and "music_files" in stats["database"]["tables"]
    analytics = client.get("/storage/analytics", headers=AUTH).json()
    genres = {g["key"]: g["tracks"] for g in analytics["by_genre"]}
    assert genres == {"Unknown": 2, "Rock": 1}
    assert {t["key"]: t["tracks"] for t in analytics["by_type"]} == {"wav": 2, "mp3": 1}
    assert analytics["largest"][0]["track_id"] == library["jfk.wav"]
    assert analytics["duplicates"] == [] and analytics["failed_stages"] == {}


def test_selection_statistics(client: TestClient, library: dict[str, str]) -> None:
    ids = [library["jfk.wav"], library[MP3], "f" * 64, library["jfk.wav"]]
    body = client.post("/tracks/stats", json={"ids": ids}, headers=AUTH).json()
    assert (body["requested"], body["found"], body["transcribed"], body["with_lyrics"]) == (3, 2, 2, 0)
    assert body["bytes"] == media.SPEECH_WAV.stat().st_size + media.SPEECH_MP3.stat().st_size
    assert body["seconds"] == pytest.approx(22.0, abs=0.2)
    assert {g["key"]: g["tracks"] for g in body["by_genre"]} == {"Unknown": 1, "Rock": 1}
    assert {g["key"]: g["tracks"] for g in body["by_type"]} == {"wav": 1, "mp3": 1}
    assert client.post("/tracks/stats", json={"ids": ["nope"]}, headers=AUTH).status_code == 422
    assert client.post("/tracks/stats", json={"ids": []}, headers=AUTH).status_code == 422


def test_lyrics_comparison_and_lrc_downloads(
    services: ServiceEndpoints, tmp_path: Path, client: TestClient
) -> None:
    """A track whose sidecar lyrics came along: detail shows lyrics and comparison; TXT and LRC download."""
    store = ObjectStore(services.s3_endpoint, services.s3_access_key, services.s3_secret_key,
                        bucket=f"lyr-{uuid.uuid4().hex[:10]}")  # fmt: skip
    store.ensure_bucket()
    song = tmp_path / "Speeches" / "ask not.flac"
    song.parent.mkdir()
    media.encode(song)
    song.with_suffix(".txt").write_text(
        "And so, my fellow Americans,\nask not what your country can do for you,\n"
        "ask what you can do for your country.\n(ask what you can do)\n"
    )
    settings = api_settings(services, store.bucket)
    rows = process_paths([str(song)], store=store, database_url=services.database_url,
                         instance=dg.DagsterInstance.ephemeral(), resources=definitions.build_resources(settings),
                         batch=1)  # fmt: skip
    track = rows[0]["track_id"]
    assert rows[0]["lyrics_source"] == "sidecar" and rows[0]["similarity"] > 80
    body = client.get(f"/tracks/{track}", headers=AUTH).json()
    assert body["lyrics"]["source"] == "sidecar" and "fellow Americans" in body["lyrics"]["text"]
    comparison = body["comparison"]
    assert comparison["similarity"] == rows[0]["similarity"]
    assert "backing vocals in parentheses not transcribed (1)" in comparison["reasons"]
    assert [line["line"] for line in comparison["lines"]][0] == "And so, my fellow Americans,"
    lrc = client.get(f"/tracks/{track}/lyrics.lrc", headers=AUTH)
    assert lrc.status_code == 200 and lrc.text.splitlines()[1].startswith("[00:0")
    txt = client.get(f"/tracks/{track}/lyrics.txt", headers=AUTH)
    assert txt.status_code == 200 and txt.text.startswith("And so") and txt.text.endswith("do)\n")
    missing = client.get(f"/tracks/{library_missing()}/lyrics.lrc", headers=AUTH)
    assert (
        missing.status_code == 404 and missing.json()["detail"] == "no synced lyrics (LRC) for this track yet"
    )
    missing = client.get(f"/tracks/{library_missing()}/lyrics.txt", headers=AUTH)
    assert missing.status_code == 404 and missing.json()["detail"] == "no lyrics for this track"


def library_missing() -> str:
    return "e" * 64


def test_hot_reads_are_cached_until_the_pipeline_writes(
    client: TestClient, library: dict[str, str], services: ServiceEndpoints
) -> None:
    from music_core.cache_generation import bump_generation

    url = f"/tracks/{library['jfk.wav']}"
    first = client.get(url, headers=AUTH)
    second = client.get(url, headers=AUTH)
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("MISS", "HIT")
    assert first.json() == second.json()
    search = [client.get("/search", params={"q": "country cache probe"}, headers=AUTH) for _ in range(2)]
    assert [r.headers["X-Cache"] for r in search] == ["MISS", "HIT"]
    with psycopg.connect(services.database_url) as conn:
        logged = conn.execute(
            "SELECT results FROM search_history WHERE query = 'country cache probe' ORDER BY created_at, id"
        ).fetchall()
    # a cached answer is still a logged search; the tracks found are recorded when computed
    assert [row[0] for row in logged] == [[hit["track_id"] for hit in search[0].json()["results"]], None]
    bump_generation(services.redis_url)  # what every pipeline write does
    time.sleep(0.15)  # each worker reads the generation at most 0.1 s apart (with the rate-limit count)
    assert client.get(url, headers=AUTH).headers["X-Cache"] == "MISS"


def test_without_redis_reads_are_served_uncached(services: ServiceEndpoints, library: dict[str, str]) -> None:
    settings = api_settings(services, library["bucket"], redis_url="redis://127.0.0.1:1/0")
    with TestClient(create_app(settings, warm_up=False)) as c:
        responses = [c.get(f"/tracks/{library['jfk.wav']}", headers=AUTH) for _ in range(2)]
    assert [r.status_code for r in responses] == [200, 200]
    assert [r.headers["X-Cache"] for r in responses] == ["MISS", "MISS"]


def test_search_results_export(client: TestClient, library: dict[str, str]) -> None:
    import csv
    import io

    as_csv = client.get("/search", params={"q": "country", "mode": "fulltext", "format": "csv"}, headers=AUTH)
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(as_csv.text)))
    assert rows[0][:3] == ["rank", "track_id", "score"]
    assert {library[k] for k in JFK} <= {r[1] for r in rows[1:]}  # other tests add more speeches
    as_txt = client.get("/search", params={"q": "country", "mode": "fulltext", "format": "txt"}, headers=AUTH)
    assert as_txt.text.startswith("search: country (fulltext)\n1. ")
    assert client.get("/search", params={"q": "x", "format": "xml"}, headers=AUTH).status_code == 422


def test_csv_cells_cannot_become_formulas() -> None:
    from music_api.routes.search import _cell

    assert [_cell(v) for v in ("=HYPERLINK(1)", "+1", "-2", "@x", "ok", None, 3.5)] == [
        "'=HYPERLINK(1)", "'+1", "'-2", "'@x", "ok", "", "3.5",
    ]  # fmt: skip


def test_transcriptions_csv(client: TestClient, library: dict[str, str]) -> None:
    import csv
    import io

    r = client.post("/export/transcriptions.csv", json={"ids": [library["jfk.wav"], library["librivox_0870.wav"]]},
                    headers=AUTH)  # fmt: skip
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["track_id", "filename", "language", "confidence", "no_vocals", "model_id", "text"]
    by_name = {row[1]: row for row in rows[1:]}  # registration order (parallel) decides the row order
    assert set(by_name) == {"jfk.wav", "librivox_0870.wav"}
    assert "country" in by_name["jfk.wav"][6].lower()
    assert client.post("/export/transcriptions.csv", json={"ids": ["x"]}, headers=AUTH).status_code == 422
    unknown = client.post("/export/transcriptions.csv", json={"ids": [library_missing()]}, headers=AUTH)
    assert unknown.status_code == 404 and unknown.json()["detail"] == "none of these tracks exist"


# --- the search service ------------------------------------------------------------------------


def start_search_service(services: ServiceEndpoints, bucket: str, socket: Path) -> subprocess.Popen:
    """``python -m music_api.search_service`` as `up` runs it; returns once its model is loaded."""
    env = {**os.environ, "MUSIC_S3_ENDPOINT": services.s3_endpoint, "MUSIC_S3_ACCESS_KEY": services.s3_access_key,
           "MUSIC_S3_SECRET_KEY": services.s3_secret_key, "MUSIC_BUCKET": bucket}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "music_api.search_service", "--socket", str(socket)],
        env=env, cwd=Path(__file__).parents[1], start_new_session=True, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    client = RemoteSemanticIndex(socket)
    try:
        loaded = client.wait_until_loaded(120, alive=lambda: proc.poll() is None)
    finally:
        client.close()
    if not loaded:
        proc.kill()
        pytest.fail(f"the search service did not load its model: {proc.communicate()[1]}")
    return proc


def stop_search_service(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    proc.send_signal(sig)
    proc.wait(20)


@pytest.fixture(scope="module")
def search_socket(
    services: ServiceEndpoints, library: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, subprocess.Popen]]:
    socket = tmp_path_factory.mktemp("search") / "run" / "search.sock"
    proc = start_search_service(services, library["bucket"], socket)
    yield socket, proc
    if proc.poll() is None:
        stop_search_service(proc)


QUERIES = ("ask what you can do for your country", "a man considering his financial means", "zebra umbrella")


def test_the_search_service_answers_as_each_worker_would(
    services: ServiceEndpoints, library: dict[str, str], search_socket: tuple[Path, subprocess.Popen]
) -> None:
    """Through the service, semantic and hybrid search give the same tracks and scores as a worker's own
    encoder and index; the socket is private; /health reports the service."""
    socket, _ = search_socket
    assert stat.S_IMODE(socket.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(socket.stat().st_mode) == 0o600
    local_settings = api_settings(services, library["bucket"])
    remote_settings = api_settings(services, library["bucket"], search_socket=socket)
    answers = {}
    for name, settings in (("local", local_settings), ("remote", remote_settings)):
        flush_cache(services)
        with TestClient(create_app(settings, warm_up=False)) as c:
            answers[name] = [
                [(h["track_id"], h["score"]) for h in c.get("/search", params={"q": q, "mode": mode},
                                                          headers=AUTH).json()["results"]]
                for q in QUERIES for mode in ("semantic", "hybrid")
            ]  # fmt: skip
            if name == "remote":
                health = c.get("/health").json()
                assert health["checks"]["search_service"] == {"ok": True, "detail": None}
                assert isinstance(c.app.state.semantic, RemoteSemanticIndex)  # type: ignore[attr-defined]
    assert answers["remote"][0][0][0] in {library[k] for k in JFK}
    for local, remote in zip(answers["local"], answers["remote"], strict=True):
        assert [t for t, _ in remote] == [t for t, _ in local]
        assert [s for _, s in remote] == pytest.approx([s for _, s in local], abs=1e-5)


@pytest.mark.parametrize(
    "request_header",
    [{"text": "", "k": 5}, {"text": "x" * 2001, "k": 5}, {"text": "a", "k": 0}, {"text": "a", "k": 10**6},
     {"text": "a", "k": True}, {"text": "a", "k": "5"}, {"text": 5, "k": 5}, {"k": 5}, {"op": "drop table"}],
)  # fmt: skip
def test_the_search_service_refuses_malformed_lookups_and_keeps_the_connection(
    search_socket: tuple[Path, subprocess.Popen], request_header: dict[str, object]
) -> None:
    socket, _ = search_socket
    with contextlib.closing(pysocket.socket(pysocket.AF_UNIX, pysocket.SOCK_STREAM)) as conn:
        conn.settimeout(30)
        conn.connect(str(socket))
        send_frame(conn, request_header)
        header, payload = recv_frame(conn, 1 << 20)  # type: ignore[misc]
        assert header["ok"] is False and header["error"] and payload == b""
        send_frame(conn, {"op": "lookup", "text": "ask what you can do", "k": 3})  # the same connection
        header, payload = recv_frame(conn, 1 << 20)  # type: ignore[misc]
        vector, hits = unpack_lookup(header, payload)
        assert header["ok"] is True and len(vector) == header["dim"] == 384
        assert hits is None or len(hits) <= 3


@pytest.mark.parametrize(
    "raw",
    [struct.pack(">II", 4, 0) + b"nope", struct.pack(">II", 1 << 30, 0), struct.pack(">II", 2, 0) + b"[]",
     struct.pack(">II", 50, 0) + b"{", b"\x00\x00", struct.pack(">II", 60_000, 0) + b"[" * 60_000],
)  # fmt: skip
def test_the_search_service_survives_broken_frames(
    search_socket: tuple[Path, subprocess.Popen], raw: bytes
) -> None:
    """Garbage, a 1 GB length and truncated frames: the connection gets an error (when it can still be
    framed) and is dropped; the service goes on answering others."""
    socket, proc = search_socket
    with contextlib.closing(pysocket.socket(pysocket.AF_UNIX, pysocket.SOCK_STREAM)) as conn:
        conn.settimeout(30)
        conn.connect(str(socket))
        conn.sendall(raw)
        conn.shutdown(pysocket.SHUT_WR)
        frame = recv_frame(conn, 1 << 20)
        if frame is not None:
            assert frame[0]["ok"] is False and "bad frame" in frame[0]["error"]
        assert recv_frame(conn, 1 << 20) is None  # then closed
    client = RemoteSemanticIndex(socket)
    try:
        assert client.health()["ok"] is True and proc.poll() is None
    finally:
        client.close()


def test_a_second_search_service_does_not_take_over_the_socket(
    services: ServiceEndpoints, library: dict[str, str], search_socket: tuple[Path, subprocess.Popen]
) -> None:
    socket, proc = search_socket
    env = {**os.environ, "MUSIC_S3_ENDPOINT": services.s3_endpoint, "MUSIC_BUCKET": library["bucket"]}
    second = subprocess.run(
        [sys.executable, "-m", "music_api.search_service", "--socket", str(socket)],
        env=env, cwd=Path(__file__).parents[1], capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert second.returncode != 0 and "another search service is running" in second.stderr
    client = RemoteSemanticIndex(socket)
    try:
        assert client.health()["ok"] is True and proc.poll() is None  # the first one still answers
    finally:
        client.close()


def test_without_the_search_service_semantic_search_says_503_and_recovers(
    services: ServiceEndpoints, library: dict[str, str], search_socket: tuple[Path, subprocess.Popen]
) -> None:
    """The service killed (its socket file left behind): semantic and hybrid answer 503 with Retry-After
    (not a 500, and nothing is cached), full text still answers, /health says degraded. Started again on
    the stale socket, the same worker recovers; stopped cleanly, the service removes its socket."""
    socket, proc = search_socket
    pooled = RemoteSemanticIndex(socket)  # a worker's client with several idle connections
    with ThreadPoolExecutor(4) as pool:
        assert all(
            f.result().hits is not None for f in [pool.submit(pooled.lookup, q, 3) for q in QUERIES * 2]
        )
    assert len(pooled._idle) >= 2
    stop_search_service(proc, signal.SIGKILL)
    assert socket.exists()
    flush_cache(services)
    with TestClient(
        create_app(api_settings(services, library["bucket"], search_socket=socket), warm_up=False)
    ) as c:
        for mode in ("semantic", "hybrid"):
            down = c.get("/search", params={"q": QUERIES[0], "mode": mode}, headers=AUTH)
            assert down.status_code == 503 and down.headers["retry-after"] == "10", down.text
            assert "mode=fulltext" in down.json()["detail"]
        assert c.get("/search", params={"q": QUERIES[0], "mode": "fulltext"}, headers=AUTH).status_code == 200
        health = c.get("/health").json()
        assert health["status"] == "degraded" and health["checks"]["search_service"]["ok"] is False
        restarted = start_search_service(services, library["bucket"], socket)
        try:
            up = c.get("/search", params={"q": QUERIES[0], "mode": "semantic"}, headers=AUTH)
            assert up.status_code == 200 and up.json()["results"][0]["track_id"] in {library[k] for k in JFK}
            for query in QUERIES:  # every idle connection was stale: the first failure drops them all
                assert pooled.lookup(query, 3).hits is not None
            pooled.close()
        finally:
            stop_search_service(restarted)
    assert not socket.exists()
