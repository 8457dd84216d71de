"""Error responses: one JSON shape for every failure, and no internals in any of them.

``phone_core`` errors map onto HTTP statuses here and nowhere else; anything unexpected
becomes a 500 whose log line names the exception type and stack frames but never its
message (messages can carry request data such as emails or phones).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from phone_core.api.context import request_id_of
from phone_core.api.schemas import ErrorBody
from phone_core.errors import InputError, InsufficientCredits, NotFound

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error the API answers on purpose (401, 404, 409, 429, ...)."""

    def __init__(
        self,
        status: int,
        error: str,
        details: Any = None,
        *,
        retry_after: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.details = details
        self.retry_after = retry_after
        self.headers = dict(headers or {})
        if retry_after is not None:
            self.headers.setdefault("Retry-After", str(retry_after))


def error_response(
    request: Request,
    status: int,
    error: str,
    details: Any = None,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    rid = request_id_of(request)
    body = ErrorBody(error=error, details=details, request_id=rid, **extra)
    out = {"X-Request-ID": rid, **(headers or {})}
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=out)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(
        request,
        exc.status,
        exc.error,
        exc.details,
        headers=exc.headers,
        retry_after=exc.retry_after,
    )


async def _insufficient(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InsufficientCredits)
    return error_response(
        request,
        402,
        "insufficient credits",
        str(exc),
        credits_required=exc.required,
        credits_remaining=exc.remaining,
    )


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    # One fixed body whatever the reason (missing, or somebody else's): no existence leak.
    return error_response(request, 404, "not found")


async def _input_error(request: Request, exc: Exception) -> JSONResponse:
    return error_response(request, 400, "bad request", str(exc))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    text = {404: "not found", 405: "method not allowed"}.get(exc.status_code, str(exc.detail))
    return error_response(request, exc.status_code, text, headers=exc.headers)


def validation_items(errors: Any) -> list[dict[str, Any]]:
    """FastAPI's ``detail`` items without ``input``/``ctx`` (no echo of large bodies)."""
    return [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type"))}
        for e in errors
    ]


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(
        {"detail": validation_items(exc.errors())},
        status_code=422,
        headers={"X-Request-ID": request_id_of(request)},
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    frames = "".join(traceback.format_list(traceback.extract_tb(exc.__traceback__)))
    log.error(
        "unhandled %s on %s %s request_id=%s\n%s",
        type(exc).__name__,
        request.method,
        request.url.path,
        request_id_of(request),
        frames,
    )
    return error_response(request, 500, "internal error", "the error was logged; quote request_id")


class CatchAllMiddleware:
    """Answer any unhandled exception with the 500 body, and swallow it.

    Starlette's own last-resort handler re-raises after responding, and uvicorn then logs
    the exception with its message ("Exception in ASGI application"): that could put
    request data in the server log. Here it ends with our message-free log line.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            response = await _unexpected(Request(scope), exc)
            if not started:
                await response(scope, receive, send)


def install(app: FastAPI) -> None:
    """Exception handlers, plus the catch-all (add the request-id middleware after it)."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(InsufficientCredits, _insufficient)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(InputError, _input_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_middleware(CatchAllMiddleware)
