"""``/docs``: Swagger UI served from this process, without a third-party CDN.

FastAPI's own page loads Swagger UI's script and stylesheet from a public CDN (so the docs
page would run code from a host the operator does not control, and break offline). Here
the same files come from the ``fastapi-offline`` package (Swagger UI's dist files, MIT),
served under ``/docs/assets``; the page's start-up script is a file too, so the page's
Content-Security-Policy allows scripts from this origin only, with no inline script.
ReDoc (also CDN-based in FastAPI) is not offered.
"""

from __future__ import annotations

import json

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
ASSETS_URL = "/docs/assets"
INIT_URL = "/docs/init.js"
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="{root}{assets}/swagger-ui.css">
<link rel="icon" href="{root}{assets}/favicon.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{root}{assets}/swagger-ui-bundle.js"></script>
<script src="{root}{init}"></script>
</body>
</html>
"""

_INIT = """window.addEventListener("load", function () {{
  window.ui = SwaggerUIBundle({{
    url: {openapi_url},
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset]
  }});
}});
"""


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def install(app: FastAPI) -> None:
    """Serve the docs page, its start-up script and Swagger UI's files on ``app``."""
    app.mount(ASSETS_URL, StaticFiles(packages=[("fastapi_offline", "static")]), name="docs-assets")
    title = _html_escape(f"{app.title} - Swagger UI")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(DOCS_URL, include_in_schema=False)
    def docs_page(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = _PAGE.format(title=title, root=root, assets=ASSETS_URL, init=INIT_URL)
        return HTMLResponse(page, headers={"Content-Security-Policy": DOCS_CSP})

    @app.get(INIT_URL, include_in_schema=False)
    def docs_init(request: Request) -> Response:
        root = request.scope.get("root_path", "")
        script = _INIT.format(openapi_url=json.dumps(f"{root}{openapi_url}"))
        return Response(script, media_type="text/javascript")
