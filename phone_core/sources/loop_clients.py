"""One ``httpx.AsyncClient`` and one concurrency semaphore per event loop, for the HTTP
sources (Lantern and the vendor adapters).

A client and a semaphore belong to the loop they were made on, and DBOS runs steps on
its own loop while tests and the inline queue may call a source from others: each loop
gets its own pair, made on first use; pairs of loops that have closed are dropped.
``close()`` closes every client on its own loop, from any thread (shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

import anyio.lowlevel
import httpx


class LoopClients:
    def __init__(
        self,
        concurrency: int,
        timeout: httpx.Timeout,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.concurrency = max(1, concurrency)
        self._timeout = timeout
        self._transport = transport  # shared by every loop's client: pass a loop-agnostic one
        self._lock = threading.Lock()
        self._per_loop: dict[asyncio.AbstractEventLoop, tuple[httpx.AsyncClient, asyncio.Semaphore]]
        self._per_loop = {}

    async def get(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        """This loop's client and semaphore."""
        loop = asyncio.get_running_loop()
        created = False
        with self._lock:
            state = self._per_loop.get(loop)
            if state is None:
                created = True
                for old in [lp for lp in self._per_loop if lp.is_closed()]:
                    del self._per_loop[old]
                client = httpx.AsyncClient(
                    timeout=self._timeout,
                    transport=self._transport,
                    limits=httpx.Limits(
                        max_connections=self.concurrency * 2,
                        max_keepalive_connections=self.concurrency,
                    ),
                    follow_redirects=False,
                )
                state = (client, asyncio.Semaphore(self.concurrency))
                self._per_loop[loop] = state
        if created:
            # httpx loads its anyio backend on first use (~50 ms): do it now, before the
            # first rate-limit slot, not between a slot and its request.
            await anyio.lowlevel.checkpoint()
        return state

    async def aclose(self) -> None:
        """Close this loop's client (a client must close before its loop does)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            state = self._per_loop.pop(loop, None)
        if state is not None:
            await state[0].aclose()

    def close(self) -> None:
        """Close every loop's client, each on its own loop; a client whose loop is gone is
        dropped."""
        with self._lock:
            states, self._per_loop = self._per_loop, {}
        try:
            here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        for loop, (client, _) in states.items():
            if loop.is_closed():
                continue
            if loop is here:
                loop.create_task(client.aclose())
            elif loop.is_running():
                with contextlib.suppress(Exception):
                    asyncio.run_coroutine_threadsafe(client.aclose(), loop).result(timeout=5)
            else:
                loop.run_until_complete(client.aclose())
