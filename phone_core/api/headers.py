"""Security headers on every API response (the outermost middleware: errors included).

- ``X-Content-Type-Options: nosniff``: a JSON body is never sniffed into HTML or script;
- ``X-Frame-Options: DENY`` and CSP ``frame-ancestors 'none'``: no page may frame the API
  or its docs (clickjacking);
- ``Referrer-Policy: no-referrer``: no URL of the API leaks to another site;
- ``Cross-Origin-Resource-Policy: same-origin``: other sites cannot embed its responses;
- ``Cache-Control: no-store`` unless the response says otherwise: JSON for a key holder
  (balances, runs, download URLs) is never kept by a browser or a shared cache.

A response that sets its own ``Content-Security-Policy`` (the docs page) or
``Cache-Control`` (the docs' static files) keeps it; the rest are always set.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
_ALWAYS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
_DEFAULTS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", API_CSP.encode()),
    (b"cache-control", b"no-store"),
)
_ALWAYS_NAMES = frozenset(name for name, _ in _ALWAYS)


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() not in _ALWAYS_NAMES
                ]
                present = {k.lower() for k, _ in headers}
                headers.extend(_ALWAYS)
                headers.extend((k, v) for k, v in _DEFAULTS if k not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
