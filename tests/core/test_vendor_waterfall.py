"""Three vendors in one waterfall through the engine (a memory runtime): each record is
found by the first vendor that knows it, the spend is the sum of the found prices, the
engine's run id keys the async job checkpoint, and the cache keeps line type and
verified_at."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from phone_core import db, engine
from phone_core.inline import memory_runtime
from phone_core.runtime import Runtime
from phone_core.sources import fullenrich, lusha, prospeo, vendor_jobs
from phone_core.sources.fullenrich import FullEnrichSource
from phone_core.sources.lusha import LushaSource
from phone_core.sources.prospeo import ProspeoSource
from tests.conftest import make_settings
from tests.core.vendor_helpers import config_for, fast
from tests.fakes.batches import finish, fund, people, submit
from tests.fakes.vendor_fullenrich import FakeFullEnrich
from tests.fakes.vendor_lusha import FakeLusha
from tests.fakes.vendor_prospeo import FakeProspeo

N = 60


def _drain(rt: Runtime) -> None:
    """``drain(rt)``, closing the sources' HTTP clients on the run's loop before it ends
    (the inline queue runs each run on a loop of its own)."""

    async def main() -> None:
        try:
            while rt.queue.waiting:  # type: ignore[attr-defined]
                await engine.process_run(rt, rt.queue.waiting.popleft())  # type: ignore[attr-defined]
        finally:
            for src in rt.sources:
                await src.http.aclose()  # type: ignore[attr-defined]

    asyncio.run(main())


def _phone(i: int) -> str:
    return f"+1212555{i:04d}"


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = memory_runtime(make_settings(tmp_path / "mem", waterfall=[]))
    yield runtime
    runtime.close()


def test_three_vendor_waterfall_through_the_engine(rt: Runtime) -> None:
    knows = {
        "prospeo": {f"leep{i}": [(_phone(i), "mobile")] for i in range(N) if i % 3 == 0},
        "lusha": {f"leep{i}": [(_phone(i), "direct")] for i in range(N) if i % 2 == 0},
        "fullenrich": {f"leep{i}": [(_phone(i), "")] for i in range(N) if i % 5 == 0},
    }
    with (
        FakeProspeo(people=knows["prospeo"]) as fp,
        FakeLusha(people=knows["lusha"]) as fl,
        FakeFullEnrich(people=knows["fullenrich"]) as ff,
    ):
        p = ProspeoSource(config_for(prospeo.VENDOR, fp.url), rt.db)
        lu = LushaSource(config_for(lusha.VENDOR, fl.url), rt.db, batch_size=25)
        fe = FullEnrichSource(config_for(fullenrich.VENDOR, ff.url), rt.db, poll_interval_sec=0.01)
        for src in (p, lu, fe):
            fast(src.http)
        rt.sources = [p, lu, fe]
        fund(rt)
        run_id = submit(rt, people(N))
        _drain(rt)
        done = finish(rt, run_id)

        expected: dict[str, tuple[str, str]] = {}
        spend = 0
        for i in range(N):
            if i % 3 == 0:
                expected[f"p{i}"], spend = ("prospeo", _phone(i)), spend + 10
            elif i % 2 == 0:
                expected[f"p{i}"], spend = ("lusha", _phone(i)), spend + 5
            elif i % 5 == 0:
                expected[f"p{i}"], spend = ("fullenrich", _phone(i)), spend + 10
        rows = done.by_id()
        phones = {o.person.id: o.phone for o in done.outcomes}
        found = {
            rid: (r["source"], phones[rid]) for rid, r in rows.items() if r["status"] == "found"
        }
        assert found == expected
        assert done.run.credits_spent == spend
        # each vendor was asked only for what the ones before it did not find
        assert fp.count("POST", "/enrich-person") == N
        assert sum(fl.batch_sizes) == N - N // 3
        jobs = list(ff.jobs.values())  # misses reach it as they come: one job or a few
        assert sum(len(j.contacts) for j in jobs) == sum(1 for i in range(N) if i % 3 and i % 2)
        rows_ = vendor_jobs.jobs_of(rt.db, "fullenrich", run_id)  # keyed by the engine's run
        assert sorted(r.vendor_job_id or "" for r in rows_) == sorted(j.id for j in jobs)
        assert {r.state for r in rows_} == {"done"}

        with rt.db.connect() as conn:
            cached = conn.execute(
                sa.select(db.cache.c.source, db.cache.c.line_type, db.cache.c.verified_at)
            ).all()
        assert len(cached) == len(expected)
        assert {(s, t) for s, t, _ in cached} == {
            ("prospeo", "mobile"),
            ("lusha", "direct"),
            ("fullenrich", ""),
        }
        assert all(v is not None for _, _, v in cached)


def test_the_next_vendor_starts_before_the_first_has_finished(rt: Runtime) -> None:
    """A miss goes on to the next vendor at once: the vendors overlap on different
    records, and a bulk vendor fed one record at a time still gets chunks of several."""
    n = 40
    with (
        FakeProspeo(people={}, latency=0.05) as fp,
        FakeLusha(people={f"leep{i}": [(_phone(i), "mobile")] for i in range(n)}) as fl,
    ):
        p = ProspeoSource(config_for(prospeo.VENDOR, fp.url, concurrency=2), rt.db)
        lu = LushaSource(config_for(lusha.VENDOR, fl.url), rt.db, batch_size=25)
        rt.sources = [p, lu]
        fund(rt)
        run_id = submit(rt, people(n))
        _drain(rt)
        done = finish(rt, run_id)
        assert {r["source"] for r in done.credits_rows} == {"lusha"}
        assert min(r.ts for r in fl.requests) < max(r.ts for r in fp.requests)
        assert sum(fl.batch_sizes) == n and max(fl.batch_sizes) > 1
