"""Retry policy for HTTP sources: exponential backoff with jitter and a circuit breaker.

Both are pure and clock-injectable so they can be tested without sleeping. The breaker is
thread-safe and loop-agnostic (a lock, no asyncio primitives): DBOS runs steps on its own
event loop while tests may call a source from another one.

Breaker states::

    closed --(N consecutive failures)--> open --(pause elapsed)--> half_open
    half_open --(probe succeeds)--> closed
    half_open --(probe fails)-----> open (for another pause)

In ``half_open`` exactly one caller (the probe) may go; the others keep waiting.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from enum import StrEnum


def backoff_delay(
    attempt: int,
    base: float,
    cap: float,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    Exponential (``base * 2**(attempt-1)``, at most ``cap``) with "equal jitter": half of
    the step is fixed and half random, so retries spread out but never fire at once.
    """
    if attempt < 1 or base <= 0:
        return 0.0
    step = min(cap, base * 2.0 ** (attempt - 1))
    return step / 2 + rand() * step / 2


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Pause calls after ``failures`` consecutive failures, for ``pause_sec``."""

    PROBE_POLL_SEC = 0.05

    def __init__(
        self,
        failures: int,
        pause_sec: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = max(1, failures)
        self.pause_sec = max(0.0, pause_sec)
        self._clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._open_until = 0.0
        self._outage_start = 0.0
        self._probing = False
        self.opened_count = 0

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._state

    def outage_sec(self) -> float:
        """How long the circuit has been continuously not closed (0.0 when closed)."""
        with self._lock:
            if self._state is BreakerState.CLOSED:
                return 0.0
            return max(0.0, self._clock() - self._outage_start)

    def admit(self) -> float:
        """0.0 when the caller may send now, else seconds to wait before asking again.

        A caller admitted in ``half_open`` is the probe: it must report ``success``,
        ``failure`` or ``release`` exactly once.
        """
        with self._lock:
            if self._state is BreakerState.CLOSED:
                return 0.0
            now = self._clock()
            if self._state is BreakerState.OPEN:
                if now < self._open_until:
                    return self._open_until - now
                self._state = BreakerState.HALF_OPEN
                self._probing = False
            if self._probing:
                return self.PROBE_POLL_SEC
            self._probing = True
            return 0.0

    def success(self) -> None:
        """The upstream answered (whatever the answer): close the circuit."""
        with self._lock:
            self._state = BreakerState.CLOSED
            self._failures = 0
            self._probing = False

    def failure(self) -> None:
        """The upstream failed (5xx, timeout, reset, garbage)."""
        with self._lock:
            if self._state is BreakerState.HALF_OPEN:
                self._open()
                return
            self._failures += 1
            if self._state is BreakerState.CLOSED and self._failures >= self.threshold:
                self._open()

    def release(self) -> None:
        """Neither success nor failure (e.g. 429 or a cancelled call): free the probe slot."""
        with self._lock:
            self._probing = False

    def _open(self) -> None:
        if self._state is BreakerState.CLOSED:
            self._outage_start = self._clock()
        self._state = BreakerState.OPEN
        self._open_until = self._clock() + self.pause_sec
        self._probing = False
        self._failures = 0
        self.opened_count += 1
