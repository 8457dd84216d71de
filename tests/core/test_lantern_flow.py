"""The Lantern source inside whole runs: rate limit, 429 push-back, waterfall, cache."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from phone_core.models import RunState
from phone_core.runtime import Runtime
from phone_core.sources.directory import load_rows
from tests.fakes.batches import finish, fund, people, record_id, run_batch, settings_for, submit
from tests.fakes.upstream import FakeUpstream, max_in_window, phone_for_hash

# These tests count upstream calls exactly: a loaded CI machine must not turn a 50 ms
# answer into a client timeout and a retry (the fault tests keep the short timeout).
COUNTING_TIMEOUT = {"lantern_read_timeout_sec": 5.0}
# Arrival times at the fake carry client-side jitter (event loop, a connection's set-up)
# on top of the limiter's slots: a request sent in its slot may arrive up to this late.
ARRIVAL_JITTER_SEC = 0.2


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


def test_rate_limit_holds_across_concurrent_runs(
    make_runtime: Callable[..., Runtime], fake: FakeUpstream
) -> None:
    rate = 10.0
    fake.latency = 0.05
    rt = make_runtime(
        **settings_for(
            fake.url, lantern_rate_per_sec=rate, lantern_concurrency=8, **COUNTING_TIMEOUT
        )
    )
    fund(rt)
    run_a = submit(rt, people(15, "a"))
    run_b = submit(rt, people(15, "b"))
    runs = [finish(rt, run_id) for run_id in (run_a, run_b)]
    assert all(done.statuses() == {("found", "")} for done in runs)
    stamps = [c.ts for c in fake.requests]
    n = len(stamps)
    assert n == 30
    started = min(d.run.started_at for d in runs if d.run.started_at)
    ended = max(d.run.finished_at for d in runs if d.run.finished_at)
    assert (ended - started).total_seconds() >= (n - 1) / rate
    # arrivals are slots plus jitter: their span may be a little shorter than the slots'
    # and a late request can land beside the next one, so the limit (rate + 1 slots in
    # any second) is checked over arrival windows one jitter shorter than a second
    assert max(stamps) - min(stamps) >= (n - 1) / rate - ARRIVAL_JITTER_SEC
    assert max_in_window(stamps, 1.0 - ARRIVAL_JITTER_SEC) <= rate + 1
    # the two runs really ran at the same time, sharing the one limit
    firsts = [c.body["last_name"][3] for c in sorted(fake.requests, key=lambda c: c.ts)]
    assert "b" in firsts[: len(firsts) // 2] and "a" in firsts[: len(firsts) // 2]


def test_a_429_slows_the_whole_source_not_just_one_request(
    make_runtime: Callable[..., Runtime], fake: FakeUpstream
) -> None:
    concurrency = 4
    fake.latency = 0.02
    fake.retry_after = 0.6
    rt = make_runtime(
        **settings_for(
            fake.url,
            lantern_rate_per_sec=100.0,
            lantern_concurrency=concurrency,
            lantern_backoff_max_sec=2.0,
            **COUNTING_TIMEOUT,
        )
    )
    fund(rt)
    fake.script("429")
    done = run_batch(rt, people(12))
    assert done.statuses() == {("found", "")}
    calls = sorted(fake.requests, key=lambda c: c.ts)
    assert len(calls) == 13
    limited = next(c for c in calls if c.status == 429)
    during = [c for c in calls if limited.ts < c.ts < limited.ts + 0.55]
    # only requests whose slot was already taken before the 429 came back go out
    assert len(during) <= concurrency - 1
    retry = [c for c in calls if c.record_id == limited.record_id and c is not limited]
    assert retry and retry[0].ts - limited.ts >= 0.6


def test_directory_and_cache_hits_never_reach_the_upstream(
    make_runtime: Callable[..., Runtime], fake: FakeUpstream
) -> None:
    rt = make_runtime(**settings_for(fake.url, **COUNTING_TIMEOUT))
    fund(rt)
    rows = people(10)
    in_directory = rows[:4]
    load_rows(
        rt.db,
        [dict(r, phone=f"+1 212 555 01{i:02d}") for i, r in enumerate(in_directory)],
        file_name="crm.csv",
        loaded_by="admin",
    )
    first = run_batch(rt, rows)
    assert first.run.state is RunState.COMPLETED
    by_id = first.by_id()
    for i, row in enumerate(rows):
        expected = ("directory", f"+1212555010{i}") if i < 4 else ("lantern", None)
        assert by_id[row["id"]]["source"] == expected[0]
        if i >= 4:
            assert first.outcomes[i].phone == phone_for_hash(record_id(row))
        else:
            assert first.outcomes[i].phone == expected[1]
    sent = {c.record_id for c in fake.requests}
    assert sent == {record_id(r) for r in rows[4:]}
    assert all(c.body["record_id"] == c.record_id for c in fake.requests)

    fake.reset()
    again = run_batch(rt, rows)  # the same people in a new run: all cached, free
    assert fake.requests == []
    assert again.statuses() == {("cached", "")}
    assert again.run.credits_spent == 0
    assert [o.phone for o in again.outcomes] == [o.phone for o in first.outcomes]


def test_cancel_takes_effect_inside_a_wave(
    make_runtime: Callable[..., Runtime], fake: FakeUpstream
) -> None:
    """One wave holds the whole run; a cancel still stops upstream calls within a second."""
    from phone_core import service
    from tests.fakes.batches import USER, wait_finished

    fake.latency = 0.05
    rt = make_runtime(**settings_for(fake.url, lantern_rate_per_sec=40.0, wave_size=1000))
    fund(rt)
    run_id = submit(rt, people(400, "c"))
    deadline = time.monotonic() + 20
    while fake.count() < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    service.cancel(rt, USER, run_id)
    calls_at_cancel = fake.count()
    run = wait_finished(rt, run_id, timeout=20)
    assert run.state == RunState.CANCELLED
    assert fake.count() - calls_at_cancel <= 40  # at most ~1 s of calls at 40/s
    assert run.counts.found + run.counts.not_processed == 400
    assert run.credits_spent == run.counts.found < 100
