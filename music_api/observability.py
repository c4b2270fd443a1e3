"""Request ids, JSON access logs, Prometheus metrics and security headers (one middleware)."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

log = logging.getLogger("music_api.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Cross-Origin-Resource-Policy": "same-origin",
}


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()  # per app: several apps (tests, workers) never collide
        self.requests = Counter(
            "music_api_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "music_api_request_seconds", "Request latency", ["method", "route"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )  # fmt: skip

    def exposition(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


def _has_nul(request: Request) -> bool:
    raw = request.scope.get("query_string", b"") + (request.scope.get("raw_path") or b"")
    return b"%00" in raw or b"\x00" in raw or "\x00" in request.url.path


def install(app: FastAPI) -> None:
    metrics = Metrics()
    app.state.metrics = metrics

    @app.middleware("http")
    async def observe(request: Request, call_next):  # noqa: ANN001, ANN202
        given = request.headers.get("x-request-id", "")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        started = time.perf_counter()
        client = request.client.host if request.client else "unknown"
        retry = (
            None if request.url.path == "/health" else await request.app.state.rate_limiter.ahit("ip", client)
        )
        if retry is not None:
            response: Response = JSONResponse(
                {"detail": "too many requests from this address"},
                status_code=429,
                headers={"Retry-After": str(retry)},
            )
        elif _has_nul(request):  # PostgreSQL text cannot hold NUL: refuse it here, for every route
            response = JSONResponse({"detail": "NUL characters are not allowed in the URL"}, status_code=422)
        else:
            response = await call_next(request)
        elapsed = time.perf_counter() - started
        route = getattr(request.scope.get("route"), "path", "unmatched")  # a template: bounded label set
        metrics.requests.labels(request.method, route, str(response.status_code)).inc()
        metrics.latency.labels(request.method, route).observe(elapsed)
        response.headers["X-Request-ID"] = request_id
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        log.info(json.dumps({
            "request_id": request_id, "method": request.method, "route": route, "status": response.status_code,
            "ms": round(elapsed * 1000, 2), "client": request.client.host if request.client else None,
        }))  # fmt: skip
        return response
