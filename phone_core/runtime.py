"""The per-process runtime: state DB engine, object store, sources, and DBOS launch.

``get_runtime()`` builds it once per process (a Streamlit rerun or module reload does
not reset it: the instance lives on the ``sys`` module) and launches DBOS once, with the
run queue registered after launch as DBOS 3.4 requires.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from phone_core import db
from phone_core.credits import Price
from phone_core.settings import Settings, get_settings
from phone_core.sources.base import Source
from phone_core.sources.cache import CacheSource
from phone_core.sources.directory import DirectorySource
from phone_core.storage import LocalS3Server, ObjectStore

log = logging.getLogger(__name__)

QUEUE_NAME = "phone_runs"
_GUARD_ATTR = "_phone_core_runtime"
_LOCK = threading.Lock()


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    store: ObjectStore
    s3_server: LocalS3Server | None = None
    sources: list[Source] = field(default_factory=list)
    cache: CacheSource | None = None
    dbos_launched: bool = False
    queue: Any = None
    worker_lock: int | None = None  # fd holding data_dir/executor-<id>.lock
    dbos_client: Any = None  # for processes that submit but do not run batches

    @property
    def is_worker(self) -> bool:
        return self.dbos_launched

    def source_prices(self) -> list[Price]:
        return [s.price for s in self.sources]


def build_sources(settings: Settings, engine: Engine) -> list[Source]:
    """The paid/free sources in waterfall order from settings (cache is always first)."""
    out: list[Source] = []
    for name in settings.waterfall:
        if name == "directory":
            price = Price(
                "directory", settings.directory_lookup_cost, settings.directory_found_cost
            )
            out.append(DirectorySource(engine, price))
        elif name == "lantern":
            if settings.lantern_enabled and settings.lantern_base_url:
                from phone_core.sources.lantern import LanternSource

                out.append(LanternSource.from_settings(settings, engine))
        else:
            raise ValueError(f"unknown source in PHONE_WATERFALL: {name}")
    return out


def create_runtime(settings: Settings, *, start_s3: bool = True) -> Runtime:
    settings.ensure_data_dir()
    engine = db.make_engine(settings.state_db_url)
    db.migrate(engine)
    server = None
    if start_s3 and settings.s3_embedded and not settings.s3_endpoint_url:
        server = LocalS3Server(settings)
        server.start()
    store = ObjectStore(settings)
    rt = Runtime(settings=settings, engine=engine, store=store, s3_server=server)
    rt.sources = build_sources(settings, engine)
    rt.cache = CacheSource(engine, settings.cache_ttl_days)
    return rt


def current() -> Runtime | None:
    rt = getattr(sys, _GUARD_ATTR, None)
    return rt if isinstance(rt, Runtime) else None


def _take_worker_lock(settings: Settings) -> int | None:
    """One live worker per executor id and data dir: a second process becomes a client."""
    path = settings.data_dir / f"executor-{settings.executor_id}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def _outside_event_loop(fn: Callable[[], None]) -> None:
    """Run ``fn`` here, or in a short-lived thread when this thread runs an event loop
    (DBOS refuses its sync launch calls there: e.g. under uvicorn or Playwright)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        fn()
        return
    errors: list[BaseException] = []

    def target() -> None:
        try:
            fn()
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=target, name="phone-dbos-launch")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def get_runtime(settings: Settings | None = None, *, worker: bool = True) -> Runtime:
    """The process's runtime, built once. With ``worker=True`` this process also runs
    batches (DBOS launched, run queue registered) unless another live process already is
    the worker for this executor id and data dir; then it only submits (DBOS client)."""
    with _LOCK:
        rt = current()
        if rt is None:
            rt = create_runtime(settings or get_settings())
            setattr(sys, _GUARD_ATTR, rt)
        if worker and not rt.dbos_launched and rt.worker_lock is None:
            rt.worker_lock = _take_worker_lock(rt.settings)
            if rt.worker_lock is not None:
                from phone_core.engine import launch_dbos

                _outside_event_loop(lambda: launch_dbos(rt))
            else:
                log.info("another process is the worker here; this one only submits")
        return rt


def shutdown() -> None:
    """Stop DBOS and the S3 server this process started (tests and CLI exit)."""
    with _LOCK:
        rt = current()
        if rt is None:
            return
        if rt.dbos_launched:
            from dbos import DBOS

            DBOS.destroy(destroy_registry=False)
            rt.dbos_launched = False
        if rt.dbos_client is not None:
            rt.dbos_client.destroy()
            rt.dbos_client = None
        if rt.worker_lock is not None:
            os.close(rt.worker_lock)
            rt.worker_lock = None
        if rt.s3_server:
            rt.s3_server.stop()
        rt.engine.dispose()
        delattr(sys, _GUARD_ATTR)
