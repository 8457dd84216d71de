"""Bearer keys, the limit on failed key attempts, and the per-key request rate limit.

Authentication runs before FastAPI reads the body (see ``AuthenticatedRoute``), so a
caller without a valid key gets 401 whatever it sent, and a throttled key gets 429 even
for a malformed body. Failed attempts (a malformed key, an unknown one, a wrong secret)
lock the client address and the key id out for a while (``attempts``, in the state DB:
shared by every API process). The request rate limit per API key is kept in the state DB
too (``ratelimit.take``), so it holds across any number of API processes.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Request, Response, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Connection, Engine

from phone_core import db, keys, ratelimit
from phone_core.api.attempts import FailedKeyLimiter, client_subject, key_subject
from phone_core.api.errors import ApiError
from phone_core.errors import InputError
from phone_core.runtime import Runtime
from phone_core.settings import Settings

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
_LOCKED_OUT = "too many failed API key attempts"
RATE_PREFIX = "api-rate:"


@dataclass(frozen=True)
class Caller:
    """Who is calling: the user the key acts as, and the key's public id."""

    user: str
    key_id: str


class RateLimiter:
    """At most ``limit`` requests per API key in any ``window`` seconds (GCRA: a burst of
    ``limit``, then one every ``window / limit`` seconds), counted in the state DB's
    ``rate_limits`` table so that every API process on that DB shares one count."""

    def __init__(self, engine: Engine, limit: int, window: float = 60.0) -> None:
        self.engine = engine
        self.limit = limit
        self.window = window
        self.step = window / limit
        self.tolerance = window - self.step
        self._last_sweep = time.monotonic()

    def hit(self, key: str) -> int | None:
        """Count one request; returns None when allowed, else whole seconds to wait."""
        with self.engine.begin() as conn:
            return self.take(conn, key)

    def take(self, conn: Connection, key: str) -> int | None:
        """``hit`` in the caller's transaction (the key check's: one commit per request)."""
        wait = ratelimit.take(conn, RATE_PREFIX + key, self.step, self.tolerance)
        if time.monotonic() - self._last_sweep > self.window:
            self._last_sweep = time.monotonic()
            ratelimit.sweep_drained(conn, RATE_PREFIX)
        return None if wait is None else max(1, math.ceil(wait))


def runtime_of(request: Request) -> Runtime:
    rt = request.app.state.rt
    if not isinstance(rt, Runtime):
        raise RuntimeError("the API runtime is not started")
    return rt


def api_settings_of(request: Request) -> Settings:
    """The settings the app was built with (else the runtime's)."""
    settings = getattr(request.app.state, "api_settings", None)
    return settings if isinstance(settings, Settings) else runtime_of(request).settings


def limiter_of(request: Request) -> RateLimiter:
    state = request.app.state
    engine = runtime_of(request).db
    limiter = getattr(state, "limiter", None)
    if not isinstance(limiter, RateLimiter) or limiter.engine is not engine:
        limiter = RateLimiter(engine, api_settings_of(request).api_rate_per_minute)
        state.limiter = limiter
    return limiter


def attempts_of(request: Request) -> FailedKeyLimiter:
    state = request.app.state
    engine = runtime_of(request).db
    guard = getattr(state, "attempts", None)
    if not isinstance(guard, FailedKeyLimiter) or guard.engine is not engine:
        guard = FailedKeyLimiter.from_settings(engine, api_settings_of(request))
        state.attempts = guard
    return guard


def _unauthorized(details: str) -> ApiError:
    return ApiError(401, _UNAUTHORIZED, details, headers=_CHALLENGE)


def _verify(request: Request, token: str) -> tuple[str, str, int | None]:
    """(user, key id, seconds to wait under the key's rate limit or None) of a good key,
    its request counted in the same transaction; else 401, after counting the failure
    when it was a guess, or 429 without looking at the key when the client or key id is
    locked out.

    Every request reads the key's row: no cache, so a revoked key, or a disabled user's,
    is refused from the next request on, in every API process."""
    rt = runtime_of(request)
    guard = attempts_of(request)
    limiter = limiter_of(request)
    rate_wait: int | None = None
    shape = _KEY_SHAPE.match(token)
    key_id = shape.group(1) if shape else None
    subjects = [client_subject(request.client.host if request.client else "unknown")]
    if key_id is not None:
        subjects.append(key_subject(key_id))
    user: str | None = None
    failure: InputError | None = None
    real_key_id = False
    with rt.db.begin() as conn:  # one transaction: a lockout's charge commits with it
        if conn.dialect.name == "postgresql":
            # What this transaction writes (a rate-limit count, a lockout step, the key's
            # last use) may be lost in a database crash, harmlessly: no wait for the WAL
            # flush on the request's path.
            conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
        wait = guard.retry_after(conn, subjects)
        if wait is None and key_id is not None:
            try:
                user = keys.verify(conn, token)
                rate_wait = limiter.take(conn, key_id)
            except InputError as exc:
                failure = exc
                ids = db.api_keys.c.key_id
                real_key_id = conn.execute(sa.select(ids).where(ids == key_id)).first() is not None
    if wait is not None:
        raise ApiError(
            429,
            _LOCKED_OUT,
            f"wait {wait} s; every attempt before then lengthens the wait",
            retry_after=wait,
        )
    if isinstance(failure, keys.RevokedKey):  # the right secret: not a guess
        raise _unauthorized(str(failure))
    if user is None or key_id is None:
        guard.record_failure(subjects if real_key_id else subjects[:1])
        raise _unauthorized(str(failure) if failure else "malformed API key")
    return user, key_id, rate_wait


def authenticate(request: Request) -> Caller:
    """Verify the bearer key and count the request against its rate limit."""
    header = request.headers.get("authorization")
    if not header:
        raise _unauthorized("missing Authorization header")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("expected 'Authorization: Bearer <key>'")
    user, key_id, wait = _verify(request, token)  # messages name the reason, never the key
    caller = Caller(user=user, key_id=key_id)
    if wait is not None:
        raise ApiError(
            429,
            "rate limit exceeded",
            f"{limiter_of(request).limit} requests per minute per API key",
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
