"""The read-only API over real PostgreSQL, S3 and Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient

from music_api import auth
from music_api.main import create_app
from music_core.embedded import ServiceEndpoints
from music_core.ingest import register_local_file
from music_core.passwords import hash_key, hash_password, verify_password
from music_core.settings import Settings
from music_core.storage import ObjectStore
from tests import media

TOKEN = "test-token-with-enough-entropy"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def api_settings(services: ServiceEndpoints, bucket: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": services.database_url,
        "s3_endpoint": services.s3_endpoint,
        "s3_access_key": services.s3_access_key,
        "s3_secret_key": services.s3_secret_key,
        "redis_url": services.redis_url,
        "bucket": bucket,
        "api_token": TOKEN,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def flush_cache(services: ServiceEndpoints) -> None:
    """Rate-limit counters and cached responses live in Redis: each test starts without them."""
    redis.Redis.from_url(services.redis_url).flushdb()


@pytest.fixture
def client(services: ServiceEndpoints, store: ObjectStore, db_url: str) -> Iterator[TestClient]:
    flush_cache(services)
    with TestClient(create_app(api_settings(services, store.bucket), warm_up=False)) as c:
        yield c


def test_health_is_public_and_checks_dependencies(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "object_store", "cache"}


def test_health_reports_a_dead_cache_as_degraded(services: ServiceEndpoints, store: ObjectStore) -> None:
    settings = api_settings(services, store.bucket, redis_url="redis://127.0.0.1:1/0")
    with TestClient(create_app(settings, warm_up=False)) as c:
        response = c.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["checks"]["cache"]["ok"] is False


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic eDp5"}])
def test_tracks_need_the_token(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get("/tracks", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="music-analyzer", Bearer'


def test_tracks_are_paginated_with_a_total(client: TestClient, store: ObjectStore, db_url: str) -> None:
    for path in (media.SPEECH_WAV, media.SPEECH_MP3, media.DEMO / "falsetto.flac"):
        register_local_file(store, db_url, path, path.name)
    register_local_file(store, db_url, media.SPEECH_WAV, "again.wav")
    page = client.get("/tracks", params={"limit": 2, "offset": 0}, headers=AUTH).json()
    rest = client.get("/tracks", params={"limit": 2, "offset": 2}, headers=AUTH).json()
    assert page["total"] == rest["total"] == 3
    assert len(page["items"]) == 2 and len(rest["items"]) == 1
    names = {i["filename"] for i in page["items"] + rest["items"]}
    assert names == {"jfk.wav", "jfk.mp3", "falsetto.flac"}
    wav = next(i for i in page["items"] + rest["items"] if i["filename"] == "jfk.wav")
    assert wav["aliases"] == 2 and wav["stages"] == {}


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 10**9},
        {"limit": 0},
        {"offset": -1},
        {"limit": "ten"},
        {"offset": "1; DROP TABLE music_files"},
    ],
)
def test_bad_paging_is_a_client_error(client: TestClient, params: dict[str, object]) -> None:
    assert client.get("/tracks", params=params, headers=AUTH).status_code == 422


def test_app_refuses_to_start_without_configuration() -> None:
    with pytest.raises(RuntimeError, match="MUSIC_DATABASE_URL"):
        create_app(Settings(_env_file=None, database_url=None, api_token=None))  # type: ignore[call-arg]


def test_security_headers_and_request_ids(client: TestClient) -> None:
    response = client.get("/health", headers={"X-Request-ID": "abc12345-trace"})
    assert response.headers["X-Request-ID"] == "abc12345-trace"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    injected = client.get("/health", headers={"X-Request-ID": "bad id\twith spaces"})
    assert (
        injected.headers["X-Request-ID"] != "bad id\twith spaces"
        and len(injected.headers["X-Request-ID"]) == 32
    )


def test_metrics_count_requests_by_route_template(client: TestClient) -> None:
    assert client.get("/metrics").status_code == 401
    client.get("/tracks", headers=AUTH)
    client.get(f"/tracks/{'0' * 64}", headers=AUTH)
    body = client.get("/metrics", headers=AUTH).text
    assert 'music_api_requests_total{method="GET",route="/tracks",status="200"} 1.0' in body
    assert 'route="/tracks/{track_id}",status="404"' in body  # templates, never raw ids
    assert "0" * 64 not in body


def test_cors_only_for_configured_origins(
    services: ServiceEndpoints, store: ObjectStore, db_url: str
) -> None:
    settings = api_settings(services, store.bucket, cors_origins=["https://music.example"])
    with TestClient(create_app(settings, warm_up=False)) as c:
        ok = c.get("/health", headers={"Origin": "https://music.example"})
        other = c.get("/health", headers={"Origin": "https://evil.example"})
    assert ok.headers["access-control-allow-origin"] == "https://music.example"
    assert "access-control-allow-origin" not in other.headers


READER_KEY = "reader-key-0123456789abcdef"


@pytest.fixture
def multi_user_client(services: ServiceEndpoints, store: ObjectStore, db_url: str) -> Iterator[TestClient]:
    flush_cache(services)
    settings = api_settings(
        services,
        store.bucket,
        api_users=[f"alice:reader:{hash_password('wonderland')}", f"root:admin:{hash_password('s3cret!')}"],
        api_keys=[f"ci:reader:{hash_key(READER_KEY)}"],
    )
    with TestClient(create_app(settings, warm_up=False)) as c:
        yield c


def test_basic_auth_and_api_keys_with_roles(multi_user_client: TestClient) -> None:
    c = multi_user_client
    assert c.get("/tracks", auth=("alice", "wonderland")).status_code == 200
    assert c.get("/tracks", auth=("alice", "wrong")).status_code == 401
    assert c.get("/tracks", auth=("mallory", "wonderland")).status_code == 401
    assert c.get("/tracks", headers={"X-API-Key": READER_KEY}).status_code == 200
    assert c.get("/tracks", headers={"Authorization": f"Bearer {READER_KEY}"}).status_code == 200
    assert c.get("/tracks", headers={"X-API-Key": READER_KEY + "x"}).status_code == 401
    # Readers read; /metrics is for admins.
    assert c.get("/metrics", auth=("alice", "wonderland")).status_code == 403
    assert c.get("/metrics", headers={"X-API-Key": READER_KEY}).status_code == 403
    assert c.get("/metrics", auth=("root", "s3cret!")).status_code == 200
    assert c.get("/metrics", headers=AUTH).status_code == 200  # MUSIC_API_TOKEN is an admin key


def test_a_verified_password_is_not_hashed_again_on_every_request(
    multi_user_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks: list[str] = []
    real_verify = auth.verify_password

    def verify(password: str, stored: str) -> bool:
        checks.append(password)
        return real_verify(password, stored)

    monkeypatch.setattr(auth, "verify_password", verify)
    c = multi_user_client
    for _ in range(5):  # a browser sends the credentials with every request
        assert c.get("/tracks", auth=("alice", "wonderland")).status_code == 200
    assert checks == ["wonderland"]
    # The remembered principal keeps its role, and a wrong password is still checked (and refused).
    assert c.get("/metrics", auth=("alice", "wonderland")).status_code == 403
    assert c.get("/tracks", auth=("alice", "wonderland!")).status_code == 401
    assert c.get("/tracks", auth=("alice", "wrong")).status_code == 401
    assert checks == ["wonderland", "wonderland!", "wrong"]


def test_verified_passwords_expire_stay_bounded_and_hold_no_secret() -> None:
    now = [1000.0]
    verified = auth.VerifiedPasswords(ttl_seconds=60, capacity=2, clock=lambda: now[0])
    alice, bob = auth.Principal("alice", "reader"), auth.Principal("bob", "admin")
    verified.put("alice", "wonderland", alice)
    assert verified.get("alice", "wonderland") == alice
    assert verified.get("alice", "Wonderland") is None
    assert verified.get("alicew", "onderland") is None  # the user/password boundary is part of the key
    now[0] += 61
    assert verified.get("alice", "wonderland") is None and len(verified) == 0
    verified.put("alice", "wonderland", alice)
    verified.put("bob", "builder", bob)
    verified.get("alice", "wonderland")  # alice is now the most recently used
    verified.put("carol", "x", alice)
    assert len(verified) == 2
    assert verified.get("bob", "builder") is None and verified.get("alice", "wonderland") == alice
    held = repr(vars(verified)).encode()
    assert b"wonderland" not in held and b"builder" not in held


@pytest.mark.parametrize("entry", ["alice", "alice:superuser:x", "alice:reader:", ":admin:abc"])
def test_malformed_credential_config_is_refused(services: ServiceEndpoints, entry: str) -> None:
    with pytest.raises(ValueError, match="name:reader|admin:hash"):
        create_app(api_settings(services, "music", api_users=[entry]), warm_up=False)


def test_password_hashes() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("scrypt$") and "correct horse" not in stored
    assert verify_password("correct horse", stored)
    assert not verify_password("correct horse ", stored)
    assert not verify_password("x", "md5$abc")
    assert not verify_password("x", "garbage")
    assert hash_password("same") != hash_password("same")  # salted


def test_rate_limit_per_address(services: ServiceEndpoints, store: ObjectStore, db_url: str) -> None:
    flush_cache(services)
    with TestClient(
        create_app(api_settings(services, store.bucket, rate_limit_per_minute=5), warm_up=False)
    ) as c:
        codes = [c.get("/tracks", headers=AUTH).status_code for _ in range(5)]
        limited = c.get("/tracks", headers=AUTH)
        wrong_password = c.get("/tracks", auth=("x", "y"))  # failed logins count too
        health = c.get("/health")
    assert codes == [200] * 5
    assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= 60
    assert wrong_password.status_code == 429
    assert health.status_code == 200  # liveness checks are never limited


def test_without_redis_the_api_answers_unlimited(
    services: ServiceEndpoints, store: ObjectStore, db_url: str
) -> None:
    settings = api_settings(
        services, store.bucket, redis_url="redis://127.0.0.1:1/0", rate_limit_per_minute=2
    )
    with TestClient(create_app(settings, warm_up=False)) as c:
        assert [c.get("/tracks", headers=AUTH).status_code for _ in range(5)] == [200] * 5


@pytest.mark.parametrize(
    "path",
    ["/search?q=a%00b", "/tracks?q=%00", "/uploads/status?key=inbox/%00", "/tracks?genre=Rock%00"],
)
def test_nul_characters_are_client_errors(client: TestClient, path: str) -> None:
    r = client.get(path, headers=AUTH)
    assert r.status_code == 422 and "NUL" in r.json()["detail"]
