"""Request ids, JSON access logs, Prometheus metrics, security headers and the per-address rate limit
(one pure ASGI middleware)."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from music_core.cache_generation import GENERATION_KEY

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


class Observe:
    """Pure ASGI middleware: rate limit per address, request id, metrics, security headers, JSON access
    log. (Starlette's BaseHTTPMiddleware would pass every streamed chunk through an extra task and
    memory stream.) Latency and the log cover the whole response, body included."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        given = request.headers.get("x-request-id", "")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        started = time.perf_counter()
        client = request.client.host if request.client else None
        status = [500]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = request_id
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        retry, generation = (
            (None, None)
            if request.url.path == "/health"
            else await request.app.state.rate_limiter.ahit_reading("ip", client or "unknown", GENERATION_KEY)
        )
        request.state.generation = generation  # the pipeline's write generation (generation_cache.py)
        try:
            if retry is not None:
                refusal = JSONResponse(
                    {"detail": "too many requests from this address"},
                    status_code=429,
                    headers={"Retry-After": str(retry)},
                )
                await refusal(scope, receive, send_with_headers)
            elif _has_nul(request):  # PostgreSQL text cannot hold NUL: refuse it here, for every route
                refusal = JSONResponse(
                    {"detail": "NUL characters are not allowed in the URL"}, status_code=422
                )
                await refusal(scope, receive, send_with_headers)
            else:
                await self.app(scope, receive, send_with_headers)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")  # a template: bounded label set
            self.metrics.requests.labels(request.method, route, str(status[0])).inc()
            self.metrics.latency.labels(request.method, route).observe(elapsed)
            log.info(json.dumps({
                "request_id": request_id, "method": request.method, "route": route, "status": status[0],
                "ms": round(elapsed * 1000, 2), "client": client,
            }))  # fmt: skip


def install(app: FastAPI) -> None:
    metrics = Metrics()
    app.state.metrics = metrics
    app.add_middleware(Observe, metrics=metrics)
