"""The process's runtime, built once: the ``sys``-held singleton, the worker lock, and
the DBOS launch outside any running event loop.

``get_runtime()`` survives Streamlit reruns and module reloads (the instance lives on
the ``sys`` module). With ``worker=True`` the process also runs batches, unless another
live process already is the worker for this executor id and data dir (an ``flock``);
then it only submits, through a DBOS client.
"""

from __future__ import annotations

import asyncio
import fcntl
import gc
import logging
import os
import sys
import threading
from collections.abc import Callable

from phone_core import notify, run_views
from phone_core.runtime import Runtime, create_runtime
from phone_core.settings import Settings, get_settings
from phone_core.workflow import DbosClientQueue, DbosRunQueue

log = logging.getLogger(__name__)

_GUARD_ATTR = "_phone_core_runtime"
_LOCK_ATTR = "_phone_core_worker_lock"
_SETTLED_ATTR = "_phone_core_heap_settled"
_LOCK = threading.Lock()


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

    thread = threading.Thread(target=target, name="phone-dbos")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def requeue_orphans(rt: Runtime) -> int:
    """Queue runs left queued without a workflow (a crash between commit and enqueue)."""
    with rt.db.connect() as conn:
        ready = run_views.queued_ready(conn)
    for run_id in ready:
        rt.queue.enqueue(run_id)
    return len(ready)


def _become_worker(rt: Runtime) -> None:
    def launch() -> None:
        rt.queue = DbosRunQueue(rt)
        rt.is_worker = True
        requeue_orphans(rt)
        rt.background.append(notify.Notifier(rt).start())  # delivers the notifications

    _outside_event_loop(launch)


def get_runtime(settings: Settings | None = None, *, worker: bool = True) -> Runtime:
    """The process's runtime, built once (see the module docstring)."""
    with _LOCK:
        rt = current()
        if rt is None:
            rt = create_runtime(settings or get_settings())
            rt.queue = DbosClientQueue(rt.settings)
            setattr(sys, _GUARD_ATTR, rt)
            settle_heap()
        worker = worker and rt.settings.runs_batches
        if worker and not rt.is_worker and getattr(sys, _LOCK_ATTR, None) is None:
            fd = _take_worker_lock(rt.settings)
            if fd is None:
                log.info("another process is the worker here; this one only submits")
            else:
                setattr(sys, _LOCK_ATTR, fd)
                rt.queue.close()
                _become_worker(rt)
        return rt


def settle_heap() -> None:
    """Move what the process built to start (modules, the app, the runtime: some 230,000
    objects in an API process) out of the garbage collector's sight. A full collection
    otherwise walks all of them, 150-170 ms measured in an API process, and lands inside
    whichever request happens to trigger it: the p99 of a 1000-record POST. They live as
    long as the process anyway; what is built later is collected as usual. Once per
    process (a second runtime, in tests, would freeze what the first left behind)."""
    if getattr(sys, _SETTLED_ATTR, False):
        return
    setattr(sys, _SETTLED_ATTR, True)
    gc.collect()
    gc.freeze()


def shutdown() -> None:
    """Close this process's runtime: sources, DBOS, the worker lock, the S3 server."""
    with _LOCK:
        rt = current()
        if rt is None:
            return
        _outside_event_loop(rt.close)
        rt.is_worker = False
        fd = getattr(sys, _LOCK_ATTR, None)
        if fd is not None:
            os.close(fd)
            delattr(sys, _LOCK_ATTR)
        delattr(sys, _GUARD_ATTR)
