"""The per-key request limit lives in the state DB: every API process shares one count."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from phone_core import db
from phone_core.api.security import RATE_PREFIX, RateLimiter


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    db.migrate(engine)
    yield engine
    engine.dispose()


def test_a_burst_of_the_limit_then_a_wait(engine: Engine) -> None:
    limiter = RateLimiter(engine, 3, window=60.0)
    assert [limiter.hit("k") for _ in range(3)] == [None, None, None]
    wait = limiter.hit("k")
    assert wait is not None and 19 <= wait <= 20  # one more slot every 60/3 seconds
    assert limiter.hit("other") is None  # per key
    again = limiter.hit("k")
    assert again is not None and again <= wait  # a refused request is not counted


def test_two_processes_share_one_count(engine: Engine) -> None:
    """Two API processes (two limiters on one state DB), many threads each: exactly the
    limit gets through, never N times it."""
    first, second = RateLimiter(engine, 10), RateLimiter(engine, 10)
    allowed: list[bool] = []
    lock = threading.Lock()

    def client(limiter: RateLimiter) -> None:
        for _ in range(6):
            ok = limiter.hit("shared") is None
            with lock:
                allowed.append(ok)

    threads = [threading.Thread(target=client, args=(lim,)) for lim in (first, second) * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(allowed) == 36 and allowed.count(True) == 10


def test_drained_rows_are_swept(engine: Engine) -> None:
    limiter = RateLimiter(engine, 1000, window=0.01)  # drains at once
    for i in range(20):
        limiter.hit(f"key{i}")
    time.sleep(0.2)  # well past the window, however slow the loop above was
    limiter._last_sweep = 0.0
    limiter.hit("fresh")
    with engine.connect() as conn:
        names = {
            r[0] for r in conn.execute(db.rate_limits.select()) if r[0].startswith(RATE_PREFIX)
        }
    assert names <= {RATE_PREFIX + "fresh"}
