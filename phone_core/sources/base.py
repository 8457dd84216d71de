"""The Source protocol: what the engine needs from any place that can find a phone.

A source answers for a batch of lookups at once (``lookup_many``) so that a local
directory can use set queries and an HTTP vendor can run requests concurrently; it
returns one ``SourceResult`` per lookup, in order, and never raises for a single record:
per-record failures come back as ``status=error`` with a ``detail``. A result whose
detail is in ``FATAL_DETAILS`` tells the engine to stop using the source for the run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from phone_core.credits import Price
from phone_core.models import Detail, Person, SourceResult

FATAL_DETAILS = frozenset({Detail.UPSTREAM_AUTH.value, Detail.UPSTREAM_CREDITS.value})


@dataclass(frozen=True)
class Lookup:
    """One record sent to a source. ``record_id`` is stable per person, not per attempt."""

    idx: int
    person: Person
    identity: str

    @property
    def record_id(self) -> str:
        return hashlib.sha256(self.identity.encode()).hexdigest()[:32]


@runtime_checkable
class Source(Protocol):
    name: str
    price: Price

    async def lookup_many(self, lookups: Sequence[Lookup]) -> list[SourceResult]:
        """One result per lookup, same order; per-record failures as status=error."""
        ...

    def close(self) -> None:
        """Release clients and connections (on shutdown, from any thread)."""
        ...


# The run a waterfall is working for, set by the engine around ``lookup_many`` calls (tasks
# started inside copy it). A source that must survive a crash of the worker (an async
# vendor job) keys its checkpoint by it: the same run resumes, another run starts afresh.
# Empty outside a run (a single lookup from the API, tests): nothing is resumed then.
current_run_id: ContextVar[str] = ContextVar("phone_current_run_id", default="")
