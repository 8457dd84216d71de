"""What a process works with: settings, the state DB, the object store, the sources and
the run queue, bundled as one ``Runtime`` that is passed explicitly.

Nothing here knows about DBOS or the process: ``workflow`` provides the durable run
queue, ``inline`` an in-process one for the fast tier, and ``bootstrap`` builds the
process's runtime once.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from phone_core import audit, db, users, vendor_config
from phone_core.credits import Price
from phone_core.s3server import LocalS3Server
from phone_core.settings import Settings
from phone_core.sources import lantern_spec
from phone_core.sources.base import Source
from phone_core.sources.cache import CacheSource
from phone_core.sources.directory import DirectorySource
from phone_core.sources.vendors import VendorConfig
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
    # Builds ``sources`` from the configuration (``SourceRegistry``); ``sources`` set by
    # hand (tests, embedding) win: the registry only refreshes the list it built.
    registry: SourceRegistry | None = None
    closing: bool = False  # set first thing in ``close``: what fails from now on is shutdown

    def current_sources(self) -> list[Source]:
        """The waterfall now (the configuration is re-read at most every
        ``sources_refresh_sec``), cache excluded."""
        reg = self.registry
        if reg is not None and reg.owns(self.sources):
            self.sources = reg.refresh()
        return self.sources

    def sources_for(self, only: Sequence[str] | None = None) -> list[Source]:
        """The current waterfall, or the part of it a batch chose (in waterfall order)."""
        current = self.current_sources()
        if only is None:
            return list(current)
        chosen = set(only)
        return [s for s in current if s.name in chosen]

    def source_prices(self, only: Sequence[str] | None = None) -> list[Price]:
        return [s.price for s in self.sources_for(only)]

    def close(self) -> None:
        """Release everything the runtime holds: background threads, queue, sources'
        clients, DB, S3 server."""
        self.closing = True
        for job in self.background:
            job.stop()
        self.background.clear()
        self.queue.interrupt()  # no lookup in flight when the sources' clients close
        built = self.registry.built() if self.registry else []
        for src in {id(s): s for s in [*self.sources, *built]}.values():
            src.close()  # before the queue stops the event loop those clients live on
        self.queue.close()
        self.queue = NoQueue()
        self.db.dispose()
        if self.s3_server:
            self.s3_server.stop()


def _fingerprint(cfg: VendorConfig) -> tuple[object, ...]:
    key = hashlib.sha256(cfg.api_key.encode()).hexdigest()
    return (cfg.base_url, key, cfg.price, cfg.rate_per_sec, cfg.concurrency, cfg.timeout_sec)


class SourceRegistry:
    """The waterfall from the configuration: environment > Sources page > defaults
    (``vendor_config``), the directory first, then the enabled vendors in their order.

    ``refresh`` re-reads the configuration when the last read is older than
    ``settings.sources_refresh_sec`` (5 s): a worker picks a change up for its next wave
    without a restart. A vendor whose configuration did not change keeps its source (its
    HTTP clients, breaker); a changed one gets a new source, and the old one is closed
    with the runtime (a wave in flight may still be using it)."""

    def __init__(self, settings: Settings, state_db: Engine) -> None:
        self.settings = settings
        self.db = state_db
        self.current: list[Source] = []
        self._lock = threading.Lock()
        self._read_at: float | None = None
        self._by_name: dict[str, tuple[tuple[object, ...], Source]] = {}
        self._retired: list[Source] = []
        self._directory: Source | None = None
        self._handed: list[list[Source]] = []  # every list ``current`` has been
        self.builders: dict[str, Callable[[VendorConfig, Engine], Source]] = {
            lantern_spec.LANTERN.name: lantern_spec.build_with(settings)
        }

    def owns(self, sources: list[Source]) -> bool:
        """Whether ``sources`` is a list this registry built (not one set by hand)."""
        with self._lock:
            return any(sources is handed for handed in self._handed)

    def built(self) -> list[Source]:
        with self._lock:
            return [*(s for _, s in self._by_name.values()), *self._retired]

    def refresh(self, force: bool = False) -> list[Source]:
        now = time.monotonic()
        with self._lock:
            fresh = self._read_at is not None and now - self._read_at < (
                self.settings.sources_refresh_sec
            )
            if fresh and not force:
                return self.current
            self._read_at = now
            try:
                with self.db.connect() as conn:
                    names = vendor_config.waterfall_names(conn, self.settings)
                    resolved = {r.view.name: r for r in vendor_config.resolve(conn, self.settings)}
            except sa.exc.SQLAlchemyError as exc:
                if not self._handed:
                    raise
                # a blip of the state DB must not fail a wave: keep the sources we have
                log.warning("sources configuration not read (%s): kept", type(exc).__name__)
                return self.current
            out: list[Source] = []
            for name in names:
                if name == vendor_config.DIRECTORY:
                    out.append(self._directory_source())
                    continue
                cfg = resolved[name].config
                mark = _fingerprint(cfg)
                have = self._by_name.get(name)
                if have is None or have[0] != mark:
                    if have is not None:
                        self._retired.append(have[1])
                    build = self.builders.get(name) or vendor_config.spec_of(name).build
                    have = (mark, build(cfg, self.db))
                    self._by_name[name] = have
                    log.info("source %s built from its configuration", name)
                out.append(have[1])
            if not self._handed or [id(s) for s in out] != [id(s) for s in self.current]:
                self.current = out
                self._handed = [*self._handed[-15:], out]
            return self.current

    def _directory_source(self) -> Source:
        if self._directory is None:
            s = self.settings
            price = Price("directory", s.directory_lookup_cost, s.directory_found_cost)
            self._directory = DirectorySource(self.db, price)
        return self._directory


def build_sources(settings: Settings, state_db: Engine) -> list[Source]:
    """The waterfall from the configuration now (cache excluded: it is always first)."""
    return SourceRegistry(settings, state_db).refresh(force=True)


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
    registry = SourceRegistry(settings, state_db)
    return Runtime(
        settings=settings,
        db=state_db,
        store=store,
        sources=registry.refresh(force=True),
        cache=CacheSource(state_db, settings.cache_ttl_days),
        s3_server=server,
        registry=registry,
    )
