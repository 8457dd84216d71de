"""Failed API-key attempts: a lockout per client address and per key id, kept in the state DB.

The mechanism is ``phone_core.attempts`` (shared with web sign-ins). A subject
(``api-auth:c:<address>`` or ``api-auth:k:<key id>``) is one row whose ``next_at`` is a GCRA
"theoretical arrival time" on the database clock:

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

from sqlalchemy.engine import Engine

from phone_core.attempts import FailedAttempts
from phone_core.settings import Settings

PREFIX = "api-auth:"
_MAX_ADDRESS = 64


def client_subject(address: str) -> str:
    if len(address) > _MAX_ADDRESS:
        address = hashlib.sha256(address.encode()).hexdigest()[:32]
    return f"{PREFIX}c:{address}"


def key_subject(key_id: str) -> str:
    return f"{PREFIX}k:{key_id}"


class FailedKeyLimiter(FailedAttempts):
    """The lockout of bad API keys (``phone_core.attempts``, with this module's prefix)."""

    def __init__(
        self, engine: Engine, max_failures: int, window_sec: float, max_lockout_sec: float
    ) -> None:
        super().__init__(engine, PREFIX, max_failures, window_sec, max_lockout_sec)

    @classmethod
    def from_settings(cls, engine: Engine, settings: Settings) -> FailedKeyLimiter:
        return cls(
            engine,
            settings.api_auth_max_failures,
            settings.api_auth_window_sec,
            settings.api_auth_max_lockout_sec,
        )
