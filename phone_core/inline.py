"""Run batches in this process without DBOS or an S3 server: the in-memory doubles.

``InlineRunQueue`` keeps queued run ids and ``drain()`` runs them through
``engine.process_run`` (the durable workflow's steps, without checkpoints), following
each upload's later parts. With ``InMemoryObjectStore`` and a SQLite file,
``memory_runtime()`` gives the whole engine in milliseconds: the fast test tier, and a
way to embed the engine where no durable queue is wanted.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque

from phone_core import engine
from phone_core.runtime import Runtime, create_runtime
from phone_core.settings import Settings
from phone_core.storage import InMemoryObjectStore


class InlineRunQueue:
    """Runs wait here until ``drain()`` processes them, in order."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.waiting: deque[str] = deque()
        self.seen: set[str] = set()  # a repeat enqueue of one run id is a no-op
        self._lock = threading.Lock()

    def enqueue(self, run_id: str) -> None:
        with self._lock:
            if run_id not in self.seen:
                self.seen.add(run_id)
                self.waiting.append(run_id)

    def recover(self, executor_ids: list[str]) -> int:
        return 0  # nothing outlives this process

    def interrupt(self) -> None:
        return None  # drain() runs in the caller's thread: nothing runs in the background

    def close(self) -> None:
        self.waiting.clear()

    def drain(self) -> list[str]:
        """Process every waiting run (and the parts each one starts); the ids processed."""
        done: list[str] = []
        while True:
            with self._lock:
                if not self.waiting:
                    return done
                run_id = self.waiting.popleft()
            nxt = asyncio.run(self._process(run_id))
            done.append(run_id)
            if nxt:
                self.enqueue(nxt)

    async def _process(self, run_id: str) -> str | None:
        """One run on a loop of its own; the sources' clients on that loop close with it."""
        try:
            return await engine.process_run(self.rt, run_id)
        finally:
            await close_loop_clients(self.rt)


async def close_loop_clients(rt: Runtime) -> None:
    """Close the HTTP clients the sources opened on this event loop (``aclose``), for
    callers that run short-lived loops (``asyncio.run``)."""
    built = rt.registry.built() if rt.registry else []
    for src in {id(s): s for s in [*rt.sources, *built]}.values():
        aclose = getattr(src, "aclose", None)
        if aclose is not None:
            await aclose()


def memory_runtime(settings: Settings) -> Runtime:
    """A runtime on the settings' state DB with an in-memory store and an inline queue."""
    rt = create_runtime(settings, store=InMemoryObjectStore(settings.s3_bucket, settings.s3_prefix))
    rt.queue = InlineRunQueue(rt)
    rt.is_worker = True
    return rt
