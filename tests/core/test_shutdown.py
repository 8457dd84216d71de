"""Stopping a worker mid-run is clean: no warning, no error, and the run resumes."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable

import pytest

from phone_core import bootstrap, service
from phone_core.models import RunState
from phone_core.runtime import Runtime
from tests.fakes.batches import USER, fund, people, settings_for, submit, wait_finished
from tests.fakes.upstream import FakeUpstream


def test_shutdown_mid_run_is_clean_and_the_run_resumes(
    make_runtime: Callable[..., Runtime], caplog: pytest.LogCaptureFixture
) -> None:
    with FakeUpstream(latency=0.2) as fake:
        overrides = settings_for(
            fake.url, lantern_concurrency=2, lantern_rate_per_sec=100.0,
            lantern_read_timeout_sec=5.0,
        )  # fmt: skip
        rt = make_runtime(**overrides)
        fund(rt)
        run_id = submit(rt, people(40))
        deadline = time.monotonic() + 30
        while len(fake.requests) < 4:
            assert time.monotonic() < deadline, "the run never reached the upstream"
            time.sleep(0.01)
        with caplog.at_level(logging.DEBUG):
            bootstrap.shutdown()  # mid-run: waves in flight on DBOS's event loop
            gc.collect()  # a coroutine left un-awaited would warn (and fail) here
        noisy = [
            r.getMessage()
            for r in caplog.records
            if r.levelno >= logging.WARNING
            or "Asyncio task cancelled" in r.getMessage()
            or "Event loop is closed" in r.getMessage()
        ]
        assert noisy == []
        assert len(fake.requests) < 40  # really stopped mid-run

        rt = make_runtime(**overrides)  # same data dir and executor: DBOS recovers it
        run = wait_finished(rt, run_id, timeout=60)
        assert run.state is RunState.COMPLETED and run.counts.pending == 0
        assert run.counts.found == 40
        assert service.get_run(rt, USER, run_id).credits_spent == 40


def test_shutdown_while_runs_are_being_dequeued_leaves_nothing_unawaited(
    make_runtime: Callable[..., Runtime], caplog: pytest.LogCaptureFixture
) -> None:
    """DBOS stops its event loop before it joins its queue workers; a worker that has just
    claimed a run then hands its start to a closed loop ("Event loop is closed", a
    coroutine never awaited). The queue is closed workers first; every run still
    finishes after the restart."""
    with FakeUpstream(latency=0.05) as fake:
        overrides = settings_for(
            fake.url, queue_concurrency=2, queue_polling_interval_sec=0.01,
            lantern_rate_per_sec=1000.0,
        )  # fmt: skip
        run_ids: list[str] = []
        for _ in range(3):
            rt = make_runtime(**overrides)
            fund(rt)
            run_ids += [submit(rt, people(2, prefix=f"s{len(run_ids)}-{i}-")) for i in range(8)]
            with caplog.at_level(logging.DEBUG):
                bootstrap.shutdown()  # runs queued, some just claimed, some in flight
                gc.collect()  # an un-awaited start coroutine would warn (and fail) here
            assert not [r for r in caplog.records if "Event loop is closed" in r.getMessage()]
        rt = make_runtime(**overrides)
        for run_id in run_ids:
            assert wait_finished(rt, run_id, timeout=60).state is RunState.COMPLETED


def test_a_step_that_starts_after_the_shutdown_leaves_its_run_for_recovery() -> None:
    """A workflow the shutdown did not cancel in time (seen on a loaded machine: its next
    wave started as DBOS stopped) must not fail its run: its step is cancelled, so the
    workflow stays PENDING and resumes on the next start. A process never launched still
    says so."""
    import asyncio

    from phone_core import workflow

    assert not workflow._bound
    workflow._closed.set()
    try:
        with pytest.raises(asyncio.CancelledError):
            workflow._rt()
    finally:
        workflow._closed.clear()
    with pytest.raises(RuntimeError, match="not launched"):
        workflow._rt()


def test_a_step_failing_while_its_runtime_closes_does_not_fail_the_run() -> None:
    """Seen on CI: a wave's lookup met a client the shutdown had just closed ("Cannot
    send a request, as the client has been closed"); the run was marked failed. While the
    runtime closes, a failing step is cancelled instead: the run resumes on the next start.
    Outside a shutdown the same failure still fails the run."""
    import asyncio
    from types import SimpleNamespace

    from phone_core import workflow

    closing = SimpleNamespace(closing=True)
    workflow._bound.append(closing)  # type: ignore[arg-type]
    try:
        err = workflow._scrubbed("r1", "wave", RuntimeError("client closed"))
        assert isinstance(err, asyncio.CancelledError)
        closing.closing = False
        assert isinstance(workflow._scrubbed("r1", "wave", RuntimeError("x")), workflow.StepFailed)
    finally:
        workflow._bound.clear()
