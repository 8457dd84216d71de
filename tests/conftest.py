"""Shared fixtures: a fresh install (data dir, embedded rclone S3, SQLite, DBOS) per test."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from phone_core import credits, runtime, service
from phone_core.models import Run
from phone_core.runtime import Runtime
from phone_core.settings import Settings


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
        runtime.shutdown()
        return runtime.get_runtime(make_settings(tmp_path / "data", **overrides))

    yield start
    runtime.shutdown()


@pytest.fixture
def rt(make_runtime: Callable[..., Runtime]) -> Runtime:
    return make_runtime()


def grant(rt: Runtime, user: str, amount: int) -> None:
    with rt.engine.begin() as conn:
        credits.grant(conn, user, amount)


def wait_finished(rt: Runtime, user: str, run_id: str, timeout: float = 60.0) -> Run:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = service.get_run(rt, user, run_id)
        if run.state.finished:
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} did not finish in {timeout}s: {run.state}")
