"""Failed attempts (bad API keys, wrong passwords): a lockout per subject, in the state DB.

Every process on one state DB shares the count (the ``rate_limits`` table, as the
upstream request limit does). A subject (e.g. ``web-auth:u:<username>``) is one row whose
``next_at`` is a GCRA "theoretical arrival time" on the database clock:

- each failure adds ``step = window / max_failures`` to ``max(next_at, now)``; the debt
  ``next_at - now`` drains in real time;
- a subject whose debt is over ``window - step`` (max_failures failures in a burst) is
  locked out until it drains back;
- every attempt during the lockout adds a step too, so the delay grows with each try
  (up to ``max_lockout``); a caller that waits it out gets one try per step.

Callers choose the subjects (see ``phone_core.api.attempts`` for API keys and
``phone_core.sessions`` for web sign-ins) and a prefix of their own, so drained rows of
one kind are swept without touching the others.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Connection, Engine

from phone_core import ratelimit

_SWEEP_EVERY_SEC = 60.0


@dataclass(frozen=True)
class Lockout:
    """Subjects locked out now, and the whole seconds until the next try is allowed."""

    wait: int
    subjects: tuple[str, ...]


class FailedAttempts:
    def __init__(
        self,
        engine: Engine,
        prefix: str,
        max_failures: int,
        window_sec: float,
        max_lockout_sec: float,
    ) -> None:
        self.engine = engine
        self.prefix = prefix
        self.max_failures = max_failures
        self.window_sec = window_sec
        self.step = window_sec / max_failures
        self.tolerance = window_sec - self.step  # debt allowed before a lockout
        self.max_debt = self.tolerance + max_lockout_sec
        self._last_sweep = time.monotonic()

    def check(self, conn: Connection, subjects: Sequence[str]) -> Lockout | None:
        """None when no subject is locked out. Else the lockout; the attempt is charged a
        step (commit ``conn`` for it to count)."""
        locked = [
            name for name, debt in ratelimit.debts(conn, subjects).items() if debt > self.tolerance
        ]
        if not locked:
            return None
        debt = ratelimit.add_debt(conn, locked, self.step, self.max_debt)
        return Lockout(max(1, math.ceil(debt - self.tolerance)), tuple(locked))

    def retry_after(self, conn: Connection, subjects: Sequence[str]) -> int | None:
        """None when no subject is locked out; else whole seconds to wait (see ``check``)."""
        lockout = self.check(conn, subjects)
        return None if lockout is None else lockout.wait

    def record_failure(self, subjects: Sequence[str]) -> None:
        """Count one failed attempt against every subject (in its own transaction)."""
        if not subjects:
            return
        with self.engine.begin() as conn:
            ratelimit.ensure_rows(conn, subjects)
            ratelimit.add_debt(conn, subjects, self.step, self.max_debt)
        if time.monotonic() - self._last_sweep > _SWEEP_EVERY_SEC:
            self._last_sweep = time.monotonic()
            self.sweep()

    def sweep(self) -> int:
        """Delete this prefix's rows whose debt has drained; returns how many."""
        with self.engine.begin() as conn:
            return ratelimit.sweep_drained(conn, self.prefix)
