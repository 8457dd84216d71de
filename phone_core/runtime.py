"""The per-process runtime: state DB engine, object store, sources, and DBOS launch.

``get_runtime()`` builds it once per process (a Streamlit rerun or module reload does
not reset it: the instance lives on the ``sys`` module) and launches DBOS once, with the
run queue registered after launch as DBOS 3.4 requires.
"""

from __future__ import annotations

import logging
import sys
import threading
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

                out.append(LanternSource.from_settings(settings))
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


def get_runtime(settings: Settings | None = None, *, worker: bool = True) -> Runtime:
    """The process's runtime; launches DBOS (as a worker unless ``worker=False``) once."""
    with _LOCK:
        rt = current()
        if rt is None:
            rt = create_runtime(settings or get_settings())
            setattr(sys, _GUARD_ATTR, rt)
        if not rt.dbos_launched:
            from phone_core.engine import launch_dbos

            launch_dbos(rt, worker=worker)
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
        if rt.s3_server:
            rt.s3_server.stop()
        rt.engine.dispose()
        delattr(sys, _GUARD_ATTR)
