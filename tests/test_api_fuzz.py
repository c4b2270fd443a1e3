"""Schemathesis over the OpenAPI spec: generated requests, valid and hostile, never get a 5xx."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from music_api.main import create_app
from music_core.embedded import ServiceEndpoints
from music_core.storage import ObjectStore
from tests.test_api import AUTH, api_settings, flush_cache


@pytest.fixture
def fuzz_app(services: ServiceEndpoints, store: ObjectStore, db_url: str) -> Iterator[FastAPI]:
    flush_cache(services)
    app = create_app(api_settings(services, store.bucket, rate_limit_per_minute=100_000), warm_up=False)
    with TestClient(app):  # runs the lifespan: pool, Redis clients
        app.state.semantic.warm_up()  # as create_app(warm_up=True) does: the model loads before requests
        yield app


def test_no_server_errors(fuzz_app: FastAPI) -> None:
    """Every operation, about 15 generated cases each (Hypothesis), with a valid token."""
    api_schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 12
    statuses: list[int] = []
    for operation in operations:

        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy())
        def run(case) -> None:  # noqa: ANN001
            response = case.call(headers=AUTH, timeout=60)  # a loaded 2-core machine; 5xx is what counts
            statuses.append(response.status_code)
            assert response.status_code < 500, (case.method, case.formatted_path, response.text[:300])

        run()
    assert len(statuses) > 100
    assert any(200 <= s < 300 for s in statuses) and any(400 <= s < 500 for s in statuses)
