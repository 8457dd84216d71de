"""What a process works with: settings, the state DB, the object store, the sources and
the run queue, bundled as one ``Runtime`` that is passed explicitly.

Nothing here knows about DBOS or the process: ``workflow`` provides the durable run
queue, ``inline`` an in-process one for the fast tier, and ``bootstrap`` builds the
process's runtime once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.engine import Engine

from phone_core import audit, db, users
from phone_core.credits import Price
from phone_core.s3server import LocalS3Server
from phone_core.settings import Settings
from phone_core.sources.base import Source
from phone_core.sources.cache import CacheSource
from phone_core.sources.directory import DirectorySource
from phone_core.storage import ObjectStore, S3ObjectStore

log = logging.getLogger(__name__)


class RunQueue(Protocol):
    """Where submitted runs wait for a worker."""

    def enqueue(self, run_id: str) -> None:
        """Queue the run (a repeat for the same run id is a no-op)."""
        ...

    def recover(self, executor_ids: list[str]) -> int:
        """Take over the unfinished runs of dead executors; how many were taken."""
        ...

    def interrupt(self) -> None:
        """Stop the runs in flight in this process (they resume on the next start)."""
        ...

    def close(self) -> None: ...


class NoQueue:
    """The queue of a runtime that only reads (status, downloads, admin commands)."""

    def enqueue(self, run_id: str) -> None:
        raise RuntimeError("this process has no run queue: it cannot submit runs")

    def recover(self, executor_ids: list[str]) -> int:
        raise RuntimeError("this process has no run queue")

    def interrupt(self) -> None:
        return None

    def close(self) -> None:
        return None


class Background(Protocol):
    """A thread the runtime stops when it closes (e.g. ``notify.Notifier``)."""

    def stop(self, timeout: float = 10.0) -> None: ...


@dataclass
class Runtime:
    settings: Settings
    db: Engine  # the state database (SQLAlchemy engine)
    store: ObjectStore
    sources: list[Source] = field(default_factory=list)
    cache: CacheSource | None = None
    queue: RunQueue = field(default_factory=NoQueue)
    is_worker: bool = False  # this process runs batches (not only submits them)
    s3_server: LocalS3Server | None = None
    background: list[Background] = field(default_factory=list)  # stopped first on close

    def source_prices(self) -> list[Price]:
        return [s.price for s in self.sources]

    def close(self) -> None:
        """Release everything the runtime holds: background threads, queue, sources'
        clients, DB, S3 server."""
        for job in self.background:
            job.stop()
        self.background.clear()
        self.queue.interrupt()  # no lookup in flight when the sources' clients close
        for src in self.sources:
            src.close()  # before the queue stops the event loop those clients live on
        self.queue.close()
        self.queue = NoQueue()
        self.db.dispose()
        if self.s3_server:
            self.s3_server.stop()


def build_sources(settings: Settings, state_db: Engine) -> list[Source]:
    """The paid/free sources in waterfall order from settings (cache is always first)."""
    out: list[Source] = []
    for name in settings.waterfall:
        if name == "directory":
            price = Price(
                "directory", settings.directory_lookup_cost, settings.directory_found_cost
            )
            out.append(DirectorySource(state_db, price))
        elif name == "lantern":
            if settings.lantern_enabled and settings.lantern_base_url:
                from phone_core.sources.lantern import LanternSource

                out.append(LanternSource.from_settings(settings, state_db))
        else:
            raise ValueError(f"unknown source in PHONE_WATERFALL: {name}")
    return out


def spending_settings(settings: Settings) -> dict[str, str | int | bool]:
    """The settings that change what a batch costs or returns (audited when they change)."""
    return {
        "waterfall": ",".join(settings.waterfall),
        "directory_lookup_cost": settings.directory_lookup_cost,
        "directory_found_cost": settings.directory_found_cost,
        "lantern_lookup_cost": settings.lantern_lookup_cost,
        "lantern_found_cost": settings.lantern_found_cost,
        "lantern_failed_cost": settings.lantern_failed_cost,
        "lantern_enabled": bool(settings.lantern_enabled and settings.lantern_base_url),
        "cache_ttl_days": settings.cache_ttl_days,
        "cache_scope": settings.cache_scope,
        "dnc_mode": settings.dnc_mode,
    }


def create_runtime(
    settings: Settings, *, store: ObjectStore | None = None, start_s3: bool = True
) -> Runtime:
    """Open the state DB (migrated), the object store (starting the embedded S3 server
    when configured and ``start_s3``), and the sources. The queue is set by the caller."""
    settings.ensure_data_dir()
    state_db = db.make_engine(settings.state_db_url)
    db.migrate(state_db)
    users.import_legacy_file(state_db, settings.data_dir)  # version 1's auth.yaml, once
    audit.note_settings(state_db, spending_settings(settings))
    server = None
    if store is None:
        if start_s3 and settings.s3_embedded and not settings.s3_endpoint_url:
            server = LocalS3Server(settings)
            server.start()
        store = S3ObjectStore(settings)
    return Runtime(
        settings=settings,
        db=state_db,
        store=store,
        sources=build_sources(settings, state_db),
        cache=CacheSource(state_db, settings.cache_ttl_days),
        s3_server=server,
    )
