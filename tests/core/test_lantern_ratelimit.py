"""The shared request-rate limiter: spacing, penalties, threads, processes, PostgreSQL.

(Named test_lantern_ratelimit.py: tests/api/test_ratelimit.py exists and test files need
unique basenames in this layout.)
"""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from phone_core import db
from phone_core.ratelimit import RequestSpacer
from tests.fakes.upstream import max_in_window


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    eng = db.make_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    db.migrate(eng)
    return eng


def test_rejects_nonpositive_rate() -> None:
    with pytest.raises(ValueError):
        RequestSpacer("x", 0)


@pytest.mark.parametrize("use_db", [False, True])
def test_slots_are_spaced_by_one_over_rate(engine: Engine, use_db: bool) -> None:
    lim = RequestSpacer("spacing", 10.0, engine if use_db else None)
    delays = [lim.reserve() for _ in range(5)]
    assert delays[0] < 0.05
    for k, d in enumerate(delays):
        assert d == pytest.approx(k * 0.1, abs=0.03)


@pytest.mark.parametrize("use_db", [False, True])
def test_penalize_pushes_every_later_slot(engine: Engine, use_db: bool) -> None:
    lim = RequestSpacer("penalty", 100.0, engine if use_db else None)
    lim.reserve()
    lim.push_back(1.0)
    assert lim.reserve() == pytest.approx(1.0, abs=0.05)
    assert lim.reserve() == pytest.approx(1.01, abs=0.05)
    lim.push_back(0.2)  # never pulls a later slot earlier
    assert lim.reserve() == pytest.approx(1.02, abs=0.05)


def test_async_acquire_waits_for_the_slot(engine: Engine) -> None:
    lim = RequestSpacer("async", 20.0, engine)

    async def go() -> list[float]:
        stamps = []
        for _ in range(11):
            await lim.acquire()
            stamps.append(time.monotonic())
        return stamps

    stamps = asyncio.run(go())
    assert stamps[-1] - stamps[0] >= 0.5 - 0.02
    asyncio.run(lim.penalize(0.3))
    t0 = time.monotonic()
    asyncio.run(lim.acquire())
    assert time.monotonic() - t0 >= 0.25


def _threads_get_unique_spaced_slots(engine_a: Engine, engine_b: Engine, name: str) -> None:
    """Two limiter instances (two connection pools) from 6 threads: every slot is unique
    and exactly 1/rate after the one before (checked on the database's own clock)."""
    rate = 200.0
    limiters = [RequestSpacer(name, rate, engine_a), RequestSpacer(name, rate, engine_b)]
    slots: list[float] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        for _ in range(15):
            slot, _now = limiters[k % 2].reserve_at()
            with lock:
                slots.append(slot)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    slots.sort()
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert len(slots) == 90
    assert min(gaps) >= 1 / rate - 1e-6


def test_threads_and_two_pools_on_sqlite(engine: Engine, tmp_path: Path) -> None:
    other = db.make_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    _threads_get_unique_spaced_slots(engine, other, "threads")


_CHILD = """
import asyncio, sys, time
from phone_core import db
from phone_core.ratelimit import RequestSpacer
url, rate, n, start = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
lim = RequestSpacer("lantern", rate, db.make_engine(url))
async def main():
    while time.time() < start:
        await asyncio.sleep(0.005)
    for _ in range(n):
        await lim.acquire()
        print(repr(time.time()), flush=True)
asyncio.run(main())
"""


@pytest.mark.integration  # two OS processes
def test_two_processes_share_the_limit(engine: Engine, tmp_path: Path) -> None:
    rate, per_child = 20.0, 25
    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    start = time.time() + 2.0  # both children are up before either acquires
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, url, str(rate), str(per_child), str(start)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        for _ in range(2)
    ]
    outs = [c.communicate(timeout=30)[0] for c in children]
    assert all(c.returncode == 0 for c in children)
    per = [[float(line) for line in out.split()] for out in outs]
    stamps = sorted(per[0] + per[1])
    assert len(stamps) == 2 * per_child
    # the two children really overlapped (neither finished before the other started)
    assert max(min(per[0]), min(per[1])) < min(max(per[0]), max(per[1]))
    assert stamps[-1] - stamps[0] >= (len(stamps) - 1) / rate - 0.05
    assert max_in_window(stamps, 1.0) <= rate + 1


@pytest.mark.postgres
def test_postgres_rows_serialise_callers() -> None:
    url = os.environ.get("PHONE_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("PHONE_TEST_POSTGRES_URL is not set")
    engine_a, engine_b = db.make_engine(url), db.make_engine(url)
    db.rate_limits.create(engine_a, checkfirst=True)
    name = f"test-{uuid.uuid4().hex[:8]}"
    try:
        lim = RequestSpacer(name, 10.0, engine_a)
        delays = [lim.reserve() for _ in range(3)]
        assert delays == pytest.approx([0.0, 0.1, 0.2], abs=0.03)
        lim.push_back(1.0)
        assert lim.reserve() == pytest.approx(1.0, abs=0.05)
        _threads_get_unique_spaced_slots(engine_a, engine_b, name + "-t")
    finally:
        with engine_a.begin() as conn:
            conn.execute(db.rate_limits.delete().where(db.rate_limits.c.name.like(f"{name}%")))
        engine_a.dispose()
        engine_b.dispose()
