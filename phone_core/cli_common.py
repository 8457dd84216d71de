"""What every ``phone-enrich`` command module shares: JSON lines on stdout, the state DB
alone for the commands that need nothing else, and the full runtime, imported late (a
short command never pays for the S3 server, DBOS or the engine's imports)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from phone_core import db, users
from phone_core.settings import Settings, get_settings

if TYPE_CHECKING:
    from phone_core.runtime import Runtime


def out(obj: object, *, sort_keys: bool = False) -> None:
    """One JSON line on stdout (dates and other values as their text)."""
    print(json.dumps(obj, default=str, sort_keys=sort_keys), flush=True)


@contextlib.contextmanager
def state_db(settings: Settings | None = None) -> Iterator[Engine]:
    """The state DB alone (migrated, version 1's auth.yaml imported): no S3 server, no
    DBOS."""
    settings = settings or get_settings()
    settings.ensure_data_dir()
    engine = db.make_engine(settings.state_db_url)
    try:
        db.migrate(engine)
        users.import_legacy_file(engine, settings.data_dir)
        yield engine
    finally:
        engine.dispose()


def get_runtime(settings: Settings | None = None, *, worker: bool) -> Runtime:
    """The full runtime (state DB, S3, DBOS), for the commands that need it."""
    from phone_core import bootstrap

    return bootstrap.get_runtime(settings, worker=worker)


def shutdown() -> None:
    """Close the runtime, if this command built one."""
    bootstrap = sys.modules.get("phone_core.bootstrap")
    if bootstrap is not None:
        bootstrap.shutdown()
