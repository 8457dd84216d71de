"""Shared fixtures: a fresh install (data dir, embedded rclone S3, SQLite, DBOS) per test."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from phone_core import bootstrap, credits, service
from phone_core.inline import InlineRunQueue, memory_runtime
from phone_core.models import Run
from phone_core.runtime import Runtime
from phone_core.settings import Settings

# Tiers. A test that uses a full-stack fixture (DBOS, the rclone S3 server, a browser or a
# web-app process) is marked ``integration`` here, so the fast tier (``make test-fast``:
# ``-m "not integration and not browser and not postgres"``) cannot pick it up by
# mistake; tests that start such processes themselves carry the marker explicitly.
FULL_STACK_FIXTURES = frozenset(
    {
        "rt",
        "make_runtime",
        "api_rt",
        "frozen_rt",
        "shared",
        "make_client",
        "client",
        "app",
        "page",
        "web_app",
        "browser",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if FULL_STACK_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "data_dir": data_dir,
        "s3_port": free_port(),
        "lantern_base_url": None,
        "waterfall": ["directory", "lantern"],
    }
    base.update(overrides)
    return Settings(**base)


@pytest.fixture
def make_runtime(tmp_path: Path) -> Iterator[Callable[..., Runtime]]:
    """Start a runtime with settings overrides; shut down after the test."""

    def start(**overrides: Any) -> Runtime:
        bootstrap.shutdown()
        return bootstrap.get_runtime(make_settings(tmp_path / "data", **overrides))

    yield start
    bootstrap.shutdown()


@pytest.fixture
def memory_rt(tmp_path: Path) -> Iterator[Runtime]:
    """The fast tier: a SQLite state DB, an in-memory store and an inline queue (no DBOS,
    no S3 server). Submit, then ``drain(rt)`` to process what is queued."""
    rt = memory_runtime(make_settings(tmp_path / "mem", waterfall=[]))
    yield rt
    rt.close()


def drain(rt: Runtime) -> list[str]:
    """Process every queued run of a memory runtime; the run ids processed."""
    assert isinstance(rt.queue, InlineRunQueue)
    return rt.queue.drain()


@pytest.fixture
def rt(make_runtime: Callable[..., Runtime]) -> Runtime:
    return make_runtime()


def grant(rt: Runtime, user: str, amount: int) -> None:
    with rt.db.begin() as conn:
        credits.grant(conn, user, amount)


def wait_finished(rt: Runtime, user: str, run_id: str, timeout: float = 60.0) -> Run:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = service.get_run(rt, user, run_id)
        if run.state.finished:
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} did not finish in {timeout}s: {run.state}")
