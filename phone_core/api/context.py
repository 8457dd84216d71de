"""Request ids: echo a sane ``X-Request-ID`` or make one, and put it on every response.

A plain ASGI middleware (no BaseHTTPMiddleware: no extra task per request). Responses that
Starlette builds outside it (the 500 handler) add the header themselves.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Request-ID"
_SANE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_STATE_KEY = "request_id"


def sane_request_id(value: str | None) -> str:
    """The caller's id when it is short and plain, else a fresh one."""
    if value and _SANE.match(value):
        return value
    return uuid.uuid4().hex


def request_id_of(request: Request) -> str:
    rid = getattr(request.state, _STATE_KEY, None)
    if isinstance(rid, str):
        return rid
    rid = sane_request_id(request.headers.get(HEADER))
    setattr(request.state, _STATE_KEY, rid)
    return rid


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope.get("headers", []):
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        rid = sane_request_id(incoming)
        state: dict[str, Any] = scope.setdefault("state", {})
        state[_STATE_KEY] = rid
        raw = rid.encode("latin-1")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"
                ]
                headers.append((b"x-request-id", raw))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)
