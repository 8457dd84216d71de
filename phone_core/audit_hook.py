"""Where retention and erasure record what they did in the audit log (issue 13, item 4).

A purge or an erasure has happened once it is recorded here: an audit failure is logged,
never raised into it. Counts and ids only, never an identifier.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from sqlalchemy.engine import Engine

from phone_core import audit
from phone_core.errors import redacted_trace

log = logging.getLogger(__name__)

PURGE = audit.PURGE
ERASURE_REQUESTED = audit.ERASURE_REQUESTED
ERASURE_DONE = audit.ERASURE_DONE


def record(
    engine: Engine,
    *,
    actor: str,
    action: str,
    target: str = "",
    detail: Mapping[str, audit.DetailValue] | None = None,
) -> None:
    try:
        audit.record(engine, actor=actor, action=action, target=target, detail=detail or {})
    except Exception as exc:
        log.error("audit: %s not recorded: %s", action, redacted_trace(exc))
