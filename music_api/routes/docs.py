"""The OpenAPI page (Swagger UI 5) served from the fastapi-offline package's files, not a CDN: it works on
machines without internet, and under a page policy with scripts and styles from this origin only
(FastAPI's built-in page loads jsDelivr and an inline script, which the API's policy blocks)."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, HTTPException, Response

router = APIRouter(include_in_schema=False)
_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon.png": "image/png",
}
_PAGE = b"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Music Analyzer API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/favicon.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>
"""
_INIT = b"""window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  deepLinking: true,
});
"""
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _page(body: bytes, media: str, cache: str = "no-cache") -> Response:
    return Response(
        body, media_type=media, headers={"Content-Security-Policy": POLICY, "Cache-Control": cache}
    )


@router.get("/docs")
def docs() -> Response:
    return _page(_PAGE, "text/html; charset=utf-8")


@router.get("/docs/init.js")
def init_script() -> Response:
    return _page(_INIT, "text/javascript; charset=utf-8")


@router.get("/docs/{name}")
def asset(name: str) -> Response:
    if name not in _ASSETS:
        raise HTTPException(404, "no such documentation file")
    body = resources.files("fastapi_offline").joinpath("static", name).read_bytes()
    return _page(body, _ASSETS[name], "public, max-age=86400")
