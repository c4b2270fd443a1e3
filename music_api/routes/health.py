from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from music_api.schemas import Health, HealthCheck
from music_api.search_client import RemoteSemanticIndex

router = APIRouter(tags=["health"])


def _check(fn) -> HealthCheck:  # noqa: ANN001
    try:
        fn()
        return HealthCheck(ok=True)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return HealthCheck(ok=False, detail=type(exc).__name__)


@router.get("/health", response_model=Health, summary="Liveness and dependency checks (public)")
def health(request: Request, response: Response) -> Health:
    state = request.app.state

    def db() -> None:
        with state.pool.connection(timeout=2) as conn:
            conn.execute("SELECT 1")

    checks = {
        "database": _check(db),
        "object_store": _check(lambda: state.store.client.bucket_exists(state.store.bucket)),
        "cache": _check(lambda: state.redis.ping()),
    }
    if isinstance(state.semantic, RemoteSemanticIndex):
        checks["search_service"] = _check(state.semantic.health)
    if not checks["database"].ok:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        overall = "down"
    else:
        overall = "ok" if all(c.ok for c in checks.values()) else "degraded"
    return Health(status=overall, checks=checks)
