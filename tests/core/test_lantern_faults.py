"""Every upstream fault, through the real engine against the fake over real HTTP.

Each case checks the run's final state, every record's status/detail in credits.csv, the
credits charged (credits.csv == run spent == ledger), and the number of upstream calls.
Prices: found 1, failed lookup 2, so a wrong charge shows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from phone_core.models import RunState
from phone_core.runtime import Runtime
from phone_core.sources.lantern import LanternSource
from tests.fakes.batches import fund, people, record_id, run_batch, settings_for
from tests.fakes.upstream import FakeUpstream

N = 4
ATTEMPTS = 3


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        server.retry_after = 0.02
        server.hang_sec = 0.8
        yield server


def start(make_runtime: Callable[..., Runtime], fake: FakeUpstream, **kw: object) -> Runtime:
    rt = make_runtime(**settings_for(fake.url, lantern_failed_cost=2, **kw))
    fund(rt)
    return rt


def lantern(rt: Runtime) -> LanternSource:
    src = rt.sources[-1]
    assert isinstance(src, LanternSource)
    return src


RETRIED = {
    "429": "upstream_rate_limited",
    "500": "upstream_5xx",
    "503": "upstream_5xx",
    "timeout": "upstream_timeout",
    "reset": "upstream_connection",
}
NOT_RETRIED = {
    "bad_json": "upstream_bad_response",
    "wrong_type": "upstream_bad_response",
    "huge": "upstream_bad_response",
    "huge_chunked": "upstream_bad_response",
    "400": "upstream_rejected",
}


def test_retried_faults_end_as_errors_after_the_last_attempt(
    make_runtime: Callable[..., Runtime], fake: FakeUpstream
) -> None:
    rt = start(make_runtime, fake)  # one runtime, one run per fault (the breaker is off)
    for fault, detail in RETRIED.items():
        fake.reset()
        fake.default_fault = fault
        rows = people(N, prefix=f"r{fault}")
        done = run_batch(rt, rows)
        assert done.run.state is RunState.COMPLETED, fault
        assert done.statuses() == {("error", detail)}, fault
        charged = {(r["source"], r["credits_charged"]) for r in done.credits_rows}
        assert charged == {("lantern", "2")}, fault
        assert done.run.credits_spent == 2 * N, fault
        assert len(fake.requests) == N * ATTEMPTS, fault
        assert all(fake.count(record_id=record_id(r)) == ATTEMPTS for r in rows), fault


def test_429_retry_after_header_only_is_honoured(
    make_runtime: Callable[..., Runtime], fake: FakeUpstream
) -> None:
    rt = start(make_runtime, fake)
    fake.retry_after = 0.15  # under lantern_backoff_max_sec (0.2)
    fake.retry_after_header = True
    row = people(1)[0]
    fake.fail_record(record_id(row), "429")
    done = run_batch(rt, [row])
    assert done.statuses() == {("found", "")}
    first, second = fake.requests
    assert (first.status, second.status) == (429, 200)
    assert second.ts - first.ts >= 0.15


def test_429_asking_for_too_long_a_wait_ends_the_record(
    make_runtime: Callable[..., Runtime], fake: FakeUpstream
) -> None:
    rt = start(make_runtime, fake)
    fake.retry_after = 5.0  # over lantern_backoff_max_sec: do not retry early, do not hang
    row = people(1)[0]
    fake.fail_record(record_id(row), "429")
    t0 = time.monotonic()
    done = run_batch(rt, [row])
    assert time.monotonic() - t0 < 4
    assert done.statuses() == {("error", "upstream_rate_limited")}
    assert len(fake.requests) == 1


def test_unretried_faults_are_one_call_per_record(
    make_runtime: Callable[..., Runtime], fake: FakeUpstream
) -> None:
    rt = start(make_runtime, fake)
    for fault, detail in NOT_RETRIED.items():
        fake.reset()
        fake.default_fault = fault
        done = run_batch(rt, people(N, prefix=f"u{fault}"))
        assert done.run.state is RunState.COMPLETED, fault
        assert done.statuses() == {("error", detail)}, fault
        assert done.run.credits_spent == 2 * N, fault
        assert len(fake.requests) == N, fault


@pytest.mark.parametrize(
    ("fault", "detail"),
    [("401", "upstream_auth"), ("403", "upstream_auth"), ("402", "upstream_credits")],
)
def test_fatal_faults_stop_the_source_for_the_run(
    make_runtime: Callable[..., Runtime], fake: FakeUpstream, fault: str, detail: str
) -> None:
    # several waves, so records after the first wave never even reach the source
    rt = start(make_runtime, fake, lantern_concurrency=3, wave_size=8)
    if fault == "401":
        fake.api_key = "the-real-key"  # the configured key "k" is refused for real
    else:
        fake.default_fault = fault
    done = run_batch(rt, people(30))
    assert done.run.state is RunState.COMPLETED
    assert done.statuses() == {("error", detail)}
    assert done.run.credits_spent == 0
    assert len(fake.requests) <= 3  # at most the records already in flight
    assert "lantern" in done.run.notice and detail in done.run.notice


def test_invalid_phone_is_not_found(
    make_runtime: Callable[..., Runtime], fake: FakeUpstream
) -> None:
    rt = start(make_runtime, fake)
    fake.default_fault = "invalid_phone"
    done = run_batch(rt, people(N))
    assert done.statuses() == {("not_found", "invalid_phone")}
    assert done.run.credits_spent == 0
    assert all(o.phone == "" for o in done.outcomes)


def test_transient_faults_recover_with_retries(
    make_runtime: Callable[..., Runtime], fake: FakeUpstream
) -> None:
    rt = start(make_runtime, fake)
    fake.shape = "phones_obj"
    fake.script("500", "reset", "timeout", "429")  # the first attempt of each record fails
    done = run_batch(rt, people(N))
    assert done.statuses() == {("found", "")}
    assert all(o.phone.startswith("+1212") for o in done.outcomes)
    assert done.run.credits_spent == N
    assert len(fake.requests) == 2 * N


def test_breaker_pauses_instead_of_hammering(
    make_runtime: Callable[..., Runtime], fake: FakeUpstream
) -> None:
    rt = start(
        make_runtime,
        fake,
        lantern_breaker_failures=3,
        lantern_breaker_pause_sec=0.3,
        lantern_concurrency=2,
    )
    fake.default_fault = "500"
    n = 12
    t0 = time.monotonic()
    done = run_batch(rt, people(n))
    assert time.monotonic() - t0 < 20
    assert done.run.state is RunState.COMPLETED
    statuses = [(r["status"], r["detail"]) for r in done.credits_rows]
    assert set(statuses) <= {("error", "upstream_5xx"), ("error", "upstream_circuit_open")}
    assert ("error", "upstream_circuit_open") in statuses
    # every record that was sent at least once is charged the failed cost, the others 0
    sent = {c.record_id for c in fake.requests}
    for row in people(n):
        charged = done.by_id()[row["id"]]["credits_charged"]
        assert charged == ("2" if record_id(row) in sent else "0")
    assert len(fake.requests) <= n * ATTEMPTS // 2  # without the breaker: 36 calls
    assert lantern(rt).breaker.opened_count >= 2


def test_breaker_closes_again_after_a_good_probe(
    make_runtime: Callable[..., Runtime], fake: FakeUpstream
) -> None:
    rt = start(
        make_runtime,
        fake,
        lantern_breaker_failures=2,
        lantern_breaker_pause_sec=0.2,
        lantern_concurrency=2,
        lantern_max_attempts=4,
    )
    fake.script("500", "500", "500")
    done = run_batch(rt, people(8))
    assert done.statuses() == {("found", "")}
    assert lantern(rt).breaker.opened_count >= 1
    assert len(fake.requests) <= 8 + 3


def test_random_fault_mix_always_ends_in_clear_outcomes(
    make_runtime: Callable[..., Runtime], fake: FakeUpstream
) -> None:
    rt = start(make_runtime, fake, lantern_concurrency=6, lantern_max_attempts=4)
    fake.hit_rate = 70
    fake.mix = {"500": 0.15, "reset": 0.05, "429": 0.1, "timeout": 0.03, "bad_json": 0.04}
    rows = people(40)
    done = run_batch(rt, rows)
    assert done.run.state is RunState.COMPLETED
    allowed = {
        ("found", ""),
        ("not_found", "no_match"),
        ("error", "upstream_5xx"),
        ("error", "upstream_connection"),
        ("error", "upstream_rate_limited"),
        ("error", "upstream_timeout"),
        ("error", "upstream_bad_response"),
    }
    assert done.statuses() <= allowed
    assert len(done.credits_rows) == 40
    assert all(fake.count(record_id=record_id(r)) <= 4 for r in rows)
    found = sum(1 for r in done.credits_rows if r["status"] == "found")
    assert found >= 15
