"""Request limits enforced before the app sees a request: body size, and NUL in the URL.

``RequestLimitsMiddleware`` (plain ASGI, inside the request-id middleware):
- a declared ``Content-Length`` over ``max_body_bytes`` is answered 413 at once, before any
  of the body is read (the server then closes the connection instead of reading it);
- a body without one (chunked, streamed) is counted as it arrives, and reading stops with
  413 as soon as it passes the limit;
- NUL in the path or the query string is a 422 (PostgreSQL text refuses NUL: it would be a
  500 deep inside). Body strings are checked by the request models (``models.refuse_nul``).

The default limit is a little above the largest valid batch body, computed here from the
models' field limits (``largest_batch_body_bytes``): a test keeps the two together.
"""

from __future__ import annotations

import json

from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from phone_core.api.context import request_id_of
from phone_core.api.errors import error_response
from phone_core.models import MAX_BATCH, PERSON_FIELD_MAX_LEN

TOO_LARGE = "request body too large"
NUL_MESSAGE = "NUL characters are not allowed"
_UTF8_MAX = 4  # bytes per character, at most


def largest_batch_body_bytes() -> int:
    """Bytes of the largest valid batch body: MAX_BATCH records with every field at its
    limit, as compact JSON in UTF-8 with every character taking 4 bytes (no escapes)."""
    record = {name: "x" * size for name, size in PERSON_FIELD_MAX_LEN.items()}
    body = {"records": [record] * MAX_BATCH, "entity_type": "person", "max_credits": 2**63}
    ascii_size = len(json.dumps(body, separators=(",", ":")))
    text_chars = MAX_BATCH * sum(PERSON_FIELD_MAX_LEN.values())
    return ascii_size + text_chars * (_UTF8_MAX - 1)


class BodyTooLarge(StarletteHTTPException):
    """Raised from ``receive`` when a streamed body passes the limit; FastAPI re-raises
    HTTP exceptions from body reading, so the 413 handler answers it."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, TOO_LARGE)
        self.limit = limit


def too_large_response(request: Request, limit: int) -> JSONResponse:
    return error_response(request, 413, TOO_LARGE, f"the limit is {limit} bytes")


async def body_too_large_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BodyTooLarge)
    return too_large_response(request, exc.limit)


def _has_nul(scope: Scope) -> str | None:
    """'path' or 'query' when that part of the URL carries a NUL, else None."""
    if "\x00" in scope.get("path", ""):  # the path arrives percent-decoded
        return "path"
    query: bytes = scope.get("query_string", b"")  # the query does not
    if b"%00" in query or b"\x00" in query:
        return "query"
    return None


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class RequestLimitsMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        part = _has_nul(scope)
        if part is not None:
            detail = [{"loc": [part], "msg": NUL_MESSAGE, "type": "nul_character"}]
            rid = request_id_of(Request(scope))
            response = JSONResponse(
                {"detail": detail}, status_code=422, headers={"X-Request-ID": rid}
            )
            await response(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await too_large_response(Request(scope), limit)(scope, receive, send)
            return

        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:  # read outside FastAPI's body parsing (no handler ran)
            if not started:
                await too_large_response(Request(scope), limit)(scope, receive, send)
