"""Failed API-key attempts: a lockout per client address and per key id, kept in the state DB.

Every API process on one state DB shares the count (the ``rate_limits`` table, as the
upstream request limit does). A subject (``api-auth:c:<address>`` or ``api-auth:k:<key id>``)
is one row whose ``next_at`` is a GCRA "theoretical arrival time" on the database clock:

- each failure adds ``step = window / max_failures`` to ``max(next_at, now)``; the debt
  ``next_at - now`` drains in real time;
- a subject whose debt is over ``window - step`` (max_failures failures in a burst) is
  locked out until it drains back: 429 with Retry-After, checked before the key is;
- every attempt during the lockout adds a step too, so the delay grows with each try
  (up to ``max_lockout``); a client that waits out Retry-After gets one try per step.

The key-id subject exists only for key ids that are real (guessing a real key's secret
from many addresses still stops); unknown ids count against the client address only, so
random ids cannot fill the table. Requests with a good key only read (one primary-key
lookup per subject); drained rows are deleted now and then.

The client address is the one the ASGI server reports. uvicorn takes it from
X-Forwarded-For only when the connection comes from 127.0.0.1 (its default), which is
right behind a reverse proxy on the same host; a caller that connects to the API
directly on 127.0.0.1 can name its own address that way, so there the key-id limit is
the one that holds.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Sequence

from sqlalchemy.engine import Connection, Engine

from phone_core import ratelimit
from phone_core.settings import Settings

PREFIX = "api-auth:"
_SWEEP_EVERY_SEC = 60.0
_MAX_ADDRESS = 64


def client_subject(address: str) -> str:
    if len(address) > _MAX_ADDRESS:
        address = hashlib.sha256(address.encode()).hexdigest()[:32]
    return f"{PREFIX}c:{address}"


def key_subject(key_id: str) -> str:
    return f"{PREFIX}k:{key_id}"


class FailedKeyLimiter:
    def __init__(
        self, engine: Engine, max_failures: int, window_sec: float, max_lockout_sec: float
    ) -> None:
        self.engine = engine
        self.max_failures = max_failures
        self.window_sec = window_sec
        self.step = window_sec / max_failures
        self.tolerance = window_sec - self.step  # debt allowed before a lockout
        self.max_debt = self.tolerance + max_lockout_sec
        self._last_sweep = time.monotonic()

    @classmethod
    def from_settings(cls, engine: Engine, settings: Settings) -> FailedKeyLimiter:
        return cls(
            engine,
            settings.api_auth_max_failures,
            settings.api_auth_window_sec,
            settings.api_auth_max_lockout_sec,
        )

    def retry_after(self, conn: Connection, subjects: Sequence[str]) -> int | None:
        """None when no subject is locked out; else whole seconds to wait. A locked-out
        attempt is charged a step (commit ``conn`` for it to count)."""
        locked = [
            name for name, debt in ratelimit.debts(conn, subjects).items() if debt > self.tolerance
        ]
        if not locked:
            return None
        debt = ratelimit.add_debt(conn, locked, self.step, self.max_debt)
        return max(1, math.ceil(debt - self.tolerance))

    def record_failure(self, subjects: Sequence[str]) -> None:
        """Count one failed attempt against every subject (in its own transaction)."""
        with self.engine.begin() as conn:
            ratelimit.ensure_rows(conn, subjects)
            ratelimit.add_debt(conn, subjects, self.step, self.max_debt)
        if time.monotonic() - self._last_sweep > _SWEEP_EVERY_SEC:
            self._last_sweep = time.monotonic()
            self.sweep()

    def sweep(self) -> int:
        """Delete the rows whose debt has drained; returns how many."""
        with self.engine.begin() as conn:
            return ratelimit.sweep_drained(conn, PREFIX)
