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
