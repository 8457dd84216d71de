"""Bearer keys and the per-key request rate limit.

Authentication runs before FastAPI reads the body (see ``AuthenticatedRoute``), so a
caller without a valid key gets 401 whatever it sent, and a throttled key gets 429 even
for a malformed body. The rate limit is a sliding window per API key, kept in this
process's memory: with N API processes a key may make up to N times the limit.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Request, Response, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from phone_core import keys
from phone_core.api.errors import ApiError
from phone_core.errors import InputError
from phone_core.runtime import Runtime

bearer = HTTPBearer(
    scheme_name="BearerAuth",
    description="An API key created in the web app: `Authorization: Bearer pe_...`",
    auto_error=False,
)
_UNAUTHORIZED = "invalid or missing API key"
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
# What keys.create makes: pe_<hex id>_<url-safe secret>. Anything else (NUL, spaces, huge
# strings) is refused before it reaches the database.
_KEY_SHAPE = re.compile(rf"^{keys.PREFIX}_([0-9a-f]{{1,32}})_[A-Za-z0-9_\-]{{1,256}}$")


@dataclass(frozen=True)
class Caller:
    """Who is calling: the user the key acts as, and the key's public id."""

    user: str
    key_id: str


class RateLimiter:
    """Sliding-window log: at most ``limit`` requests per key in any ``window`` seconds."""

    def __init__(
        self, limit: int, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._last_sweep = clock()

    def hit(self, key: str) -> int | None:
        """Count one request; returns None when allowed, else whole seconds to wait."""
        now = self.clock()
        cutoff = now - self.window
        with self._lock:
            if now - self._last_sweep > self.window:
                self._sweep(cutoff)
                self._last_sweep = now
            log = self._hits.setdefault(key, deque())
            while log and log[0] <= cutoff:
                log.popleft()
            if len(log) >= self.limit:
                return max(1, math.ceil(log[0] + self.window - now))
            log.append(now)
            return None

    def _sweep(self, cutoff: float) -> None:
        for key in [k for k, log in self._hits.items() if not log or log[-1] <= cutoff]:
            del self._hits[key]


def runtime_of(request: Request) -> Runtime:
    rt = request.app.state.rt
    if not isinstance(rt, Runtime):
        raise RuntimeError("the API runtime is not started")
    return rt


def limiter_of(request: Request) -> RateLimiter:
    state = request.app.state
    limiter = getattr(state, "limiter", None)
    if not isinstance(limiter, RateLimiter):
        limiter = RateLimiter(runtime_of(request).settings.api_rate_per_minute)
        state.limiter = limiter
    return limiter


def authenticate(request: Request) -> Caller:
    """Verify the bearer key and count the request against its rate limit."""
    header = request.headers.get("authorization")
    if not header:
        raise ApiError(401, _UNAUTHORIZED, "missing Authorization header", headers=_CHALLENGE)
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(
            401, _UNAUTHORIZED, "expected 'Authorization: Bearer <key>'", headers=_CHALLENGE
        )
    if not _KEY_SHAPE.match(token):
        raise ApiError(401, _UNAUTHORIZED, "malformed API key", headers=_CHALLENGE)
    rt = runtime_of(request)
    try:
        with rt.engine.begin() as conn:
            user = keys.verify(conn, token)
    except InputError as exc:  # the message names the reason, never the key
        raise ApiError(401, _UNAUTHORIZED, str(exc), headers=_CHALLENGE) from None
    caller = Caller(user=user, key_id=token.split("_", 2)[1])
    limiter = limiter_of(request)
    wait = limiter.hit(caller.key_id)
    if wait is not None:
        raise ApiError(
            429,
            "rate limit exceeded",
            f"{limiter.limit} requests per minute per API key",
            retry_after=wait,
        )
    request.state.caller = caller
    return caller


class AuthenticatedRoute(APIRoute):
    """A route that authenticates (and rate-limits) before the body is parsed."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def authenticated(request: Request) -> Response:
            await run_in_threadpool(authenticate, request)
            return await handler(request)

        return authenticated


def current_caller(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> Caller:
    """The dependency routes use; also puts BearerAuth on the operation in OpenAPI."""
    caller = getattr(request.state, "caller", None)
    if isinstance(caller, Caller):
        return caller
    return authenticate(request)
