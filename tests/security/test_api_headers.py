"""Issue 9, item 17 (API part): security headers on every response, and /docs without a CDN.

The docs page is checked twice: statically (no external URL in the page or in anything it
references) and in headless Chromium, which must render the operations while every request
it makes stays on the API's own origin.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from phone_core import bootstrap
from phone_core.api.app import create_app
from phone_core.runtime import Runtime
from phone_core.settings import Settings
from tests.api.conftest import POST, ServerThread, TestClient, auth, body, fresh_user
from tests.conftest import make_settings

CHROMIUM = Path("/usr/bin/chromium")
FRAME_DENY = "frame-ancestors 'none'"
LIMIT = Settings().api_max_body_bytes


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    bootstrap.shutdown()
    data = tmp_path_factory.mktemp("headers") / "data"
    yield bootstrap.get_runtime(make_settings(data, api_rate_per_minute=100_000), worker=False)
    bootstrap.shutdown()


@pytest.fixture(scope="module")
def server(rt: Runtime) -> Iterator[ServerThread]:
    with ServerThread(create_app(rt)) as s:
        yield s


@pytest.fixture(scope="module")
def http(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30) as c:
        yield c


def check_headers(r: httpx.Response) -> None:
    h = r.headers
    assert h["x-content-type-options"] == "nosniff", r.url
    assert h["x-frame-options"] == "DENY", r.url
    assert FRAME_DENY in h["content-security-policy"], r.url
    assert h["referrer-policy"] == "no-referrer", r.url


def test_every_kind_of_response_carries_the_headers(rt: Runtime, http: httpx.Client) -> None:
    _, key = fresh_user(rt, 100)
    responses: dict[str, httpx.Response] = {
        "200": http.get("/v1/credits/remaining", headers=auth(key)),
        "202": http.post(POST, json=body(), headers=auth(key)),
        "401": http.get("/v1/credits/remaining"),
        "404": http.get(f"/v1/agents/runs/{uuid.uuid4()}", headers=auth(key)),
        "404_route": http.get("/nothing-here"),
        "405": http.delete("/v1/credits/remaining", headers=auth(key)),
        "422": http.post(POST, json=body(max_credits=0), headers=auth(key)),
        "422_nul": http.get("/v1/agents/runs/%00", headers=auth(key)),
        "413": http.post(POST, content=b" " * (LIMIT + 1), headers=auth(key)),
        "openapi": http.get("/openapi.json"),
        "docs": http.get("/docs"),
    }
    for name, r in responses.items():
        expected = int(name[:3]) if name[0].isdigit() else 200
        assert r.status_code == expected, (name, r.text[:200])
        check_headers(r)
    for name in ("200", "202", "401", "404", "422"):  # JSON for (or about) a key holder
        assert responses[name].headers["cache-control"] == "no-store", name


def test_500_carries_the_headers(rt: Runtime) -> None:
    app = create_app(rt)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("boom")

    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/boom")
    assert r.status_code == 500
    check_headers(r)  # type: ignore[arg-type]
    assert r.headers["cache-control"] == "no-store"


# -- /docs ----------------------------------------------------------------------------------

_URL_ATTR = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
_ANY_URL = re.compile(r"""(?:https?:)?//[A-Za-z0-9.-]+""")
_CSS_REF = re.compile(r"""(?:url\(\s*|@import\s+)["']?([^"')\s]+)""", re.IGNORECASE)


def _local(url: str) -> bool:
    parts = urlsplit(url)
    return not parts.scheme and not parts.netloc


def test_docs_page_references_no_external_host(http: httpx.Client) -> None:
    page = http.get("/docs")
    assert page.status_code == 200
    assert "swagger-ui" in page.text.lower()
    assert _ANY_URL.findall(page.text) == [], "the page names an external URL"
    referenced = _URL_ATTR.findall(page.text)
    assert any(u.endswith(".js") for u in referenced)
    assert any(u.endswith(".css") for u in referenced)
    for url in referenced:
        assert _local(url), url
        r = http.get(url)
        assert r.status_code == 200, url
        check_headers(r)
        if url.endswith(".css"):  # a stylesheet could @import or url() another host
            refs = _CSS_REF.findall(r.text)
            assert refs and [u for u in refs if not (u.startswith("data:") or _local(u))] == []
    csp = page.headers["content-security-policy"]
    for directive in ("default-src 'none'", "script-src 'self'", "connect-src 'self'"):
        assert directive in csp
    assert "unsafe-inline" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    assert http.get("/redoc").status_code == 404  # FastAPI's CDN-based ReDoc page is off


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium on this machine")
def test_docs_page_renders_in_a_browser_from_its_own_origin(server: ServerThread) -> None:
    from playwright.sync_api import sync_playwright

    requested: list[str] = []
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            page = browser.new_page()
            page.on("request", lambda req: requested.append(req.url))
            page.on(
                "console",
                lambda msg: problems.append(msg.text) if msg.type == "error" else None,
            )
            page.goto(f"{server.base_url}/docs")
            page.wait_for_selector(".opblock-summary-path", timeout=20_000)
            assert page.locator(".opblock").count() >= 4
        finally:
            browser.close()
    origin = urlsplit(server.base_url).netloc
    foreign = [u for u in requested if urlsplit(u).netloc not in (origin, "")]
    assert foreign == []
    assert any(u.endswith("/openapi.json") for u in requested)
    violations = [m for m in problems if "Content Security Policy" in m]
    assert violations == []
