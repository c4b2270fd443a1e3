"""Admin configuration of lyrics provider keys through the API: encrypted at rest, never shown back."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from music_api.main import create_app
from music_core.db.connection import connect
from music_core.embedded import ServiceEndpoints
from music_core.passwords import hash_password
from music_core.storage import ObjectStore
from tests.test_api import AUTH, api_settings, flush_cache

KEY = "genius-secret-token-0123456789-abcd"


@pytest.fixture
def config_client(services: ServiceEndpoints, store: ObjectStore, db_url: str) -> Iterator[TestClient]:
    flush_cache(services)
    settings = api_settings(
        services, store.bucket, secret_key="a-long-enough-secret-key-for-tests",
        api_users=[f"reader:reader:{hash_password('readonly1')}"],
    )  # fmt: skip
    with TestClient(create_app(settings, warm_up=False)) as c:
        yield c


def test_admin_stores_a_key_encrypted_and_sees_only_a_mask(
    config_client: TestClient, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    c = config_client
    caplog.set_level(logging.DEBUG)
    assert c.get("/config/provider-keys", auth=("reader", "readonly1")).status_code == 403
    assert (
        c.put("/config/provider-keys/genius", json={"key": KEY}, auth=("reader", "readonly1")).status_code
        == 403
    )

    listed = c.put("/config/provider-keys/genius", json={"key": KEY}, headers=AUTH)
    assert listed.status_code == 200
    genius = next(p for p in listed.json() if p["provider"] == "genius")
    assert genius["source"] == "api_config" and genius["masked"] == "…abcd" and genius["encrypted"] is True
    assert KEY not in listed.text and KEY not in c.get("/config/provider-keys", headers=AUTH).text
    with connect(db_url) as conn:
        stored = conn.execute(
            "SELECT value, encrypted FROM api_config WHERE key LIKE %s", ("%genius%",)
        ).fetchone()
    assert stored[1] is True and KEY not in stored[0]
    assert KEY not in caplog.text

    assert c.delete("/config/provider-keys/genius", headers=AUTH).status_code == 204
    assert c.delete("/config/provider-keys/genius", headers=AUTH).status_code == 404
    assert (
        next(p for p in c.get("/config/provider-keys", headers=AUTH).json() if p["provider"] == "genius")[
            "source"
        ]
        is None
    )


@pytest.mark.parametrize(
    ("path", "body"),
    [("/config/provider-keys/openai", {"key": "x"}), ("/config/provider-keys/genius", {"key": ""}),
     ("/config/provider-keys/genius", {"key": "x" * 501}), ("/config/provider-keys/genius", {}),
     ("/config/provider-keys/..%2f..%2fetc", {"key": "x"})],
)  # fmt: skip
def test_bad_config_requests_are_client_errors(config_client: TestClient, path: str, body: dict) -> None:
    assert config_client.put(path, json=body, headers=AUTH).status_code in {404, 422}


def test_without_a_secret_key_storing_is_refused_clearly(
    services: ServiceEndpoints, store: ObjectStore, db_url: str
) -> None:
    with TestClient(create_app(api_settings(services, store.bucket), warm_up=False)) as c:
        r = c.put("/config/provider-keys/brave", json={"key": "brave-key-123"}, headers=AUTH)
    assert r.status_code == 409 and "MUSIC_SECRET_KEY" in r.json()["detail"]
    assert "brave-key-123" not in r.text


def test_a_write_is_committed_before_its_response_is_sent(
    services: ServiceEndpoints, store: ObjectStore, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real uvicorn: with the connection released after the response (FastAPI's default scope for a
    dependency with yield), a client's next read could miss its own write. A slow commit makes the
    race certain: the row must be there as soon as the response is."""
    import httpx
    import psycopg

    from tests.test_web import LiveServer

    flush_cache(services)
    commit = psycopg.Connection.commit

    def slow_commit(self: psycopg.Connection) -> None:
        time.sleep(0.5)
        commit(self)

    settings = api_settings(services, store.bucket, secret_key="a-long-enough-secret-key-for-tests")
    with LiveServer(create_app(settings, warm_up=False)) as live:
        monkeypatch.setattr(psycopg.Connection, "commit", slow_commit)
        r = httpx.put(f"{live.url}/config/provider-keys/genius", json={"key": KEY}, headers=AUTH, timeout=30)
        assert r.status_code == 200
        with psycopg.connect(db_url, autocommit=True) as conn:
            found = conn.execute(
                "SELECT count(*) FROM api_config WHERE key LIKE %s", ("%genius%",)
            ).fetchone()
        monkeypatch.undo()
    assert found is not None and found[0] == 1
