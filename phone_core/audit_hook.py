"""Where retention and erasure record what they did in the audit log (issue 13, item 4).

The audit log (``phone_core.audit``, ``record(conn_or_engine, *, actor, action, target,
detail, ip)``) is built on another branch; until it is merged this records nothing but a
log line (action and counts only: never an identifier). Once ``phone_core.audit`` exists,
every call here goes to it: nothing else to change. Never raises: an audit failure is
logged, the purge or erasure it describes has happened.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from sqlalchemy.engine import Engine

from phone_core.errors import redacted_trace

log = logging.getLogger(__name__)

PURGE = "retention.purge"
ERASURE_REQUESTED = "erasure.requested"
ERASURE_DONE = "erasure.done"


def record(
    engine: Engine,
    *,
    actor: str,
    action: str,
    target: str = "",
    detail: dict[str, Any] | None = None,
) -> None:
    try:
        audit: Any = importlib.import_module("phone_core.audit")
    except ImportError:
        log.info("audit: %s by %s (%s)", action, actor, target)
        return
    try:
        audit.record(engine, actor=actor, action=action, target=target, detail=detail or {})
    except Exception as exc:
        log.error("audit: %s not recorded: %s", action, redacted_trace(exc))
