"""``Idempotency-Key`` on POST /v1/agents/phone (semantics of the IETF httpapi draft).

Per user (every key of a user shares one namespace), for 24 hours:
- first use: a *pending* row is claimed before the batch is submitted, then completed with
  the 202 body; a failed submit (402, 400, crash inside the request) releases the claim,
  so the same key may be retried;
- same key, same body: the stored 202 body is returned again (no second run, no second
  hold); while the first request is still in flight the second waits a few seconds,
  then gets 409 with ``retry_after``;
- same key, other body: 422.
"Same body" means the same validated request (key order, whitespace and defaults aside).
A pending row older than ``STALE`` (its process died) is taken over.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from fastapi.exceptions import RequestValidationError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from phone_core import db
from phone_core.api.errors import ApiError
from phone_core.errors import InputError
from phone_core.models import BatchCreate

TTL = timedelta(hours=24)
STALE = timedelta(minutes=5)
WAIT_SEC = 5.0
HEADER = "Idempotency-Key"
_PENDING: dict[str, Any] = {}
_t = db.idempotency


def check_key(value: str | None) -> str | None:
    """The key as given, or None without one; 400 unless it is 1-200 visible ASCII chars."""
    if value is None:
        return None
    if not (1 <= len(value) <= 200) or not all("!" <= ch <= "~" for ch in value):
        raise InputError(f"{HEADER} must be 1-200 visible ASCII characters")
    return value


def body_hash(req: BatchCreate) -> str:
    canonical = json.dumps(req.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _reused() -> RequestValidationError:
    return RequestValidationError(
        [
            {
                "loc": ("header", HEADER),
                "msg": f"this {HEADER} was already used with a different request body",
                "type": "idempotency_key_reused",
            }
        ]
    )


def _try_claim(engine: Engine, user: str, key: str, digest: str) -> tuple[bool, Any]:
    """(True, None) when claimed; (False, row mapping) when a live row exists."""
    now = db.utcnow()
    mine = (_t.c.user == user) & (_t.c.key == key)
    with engine.begin() as conn:
        row = conn.execute(sa.select(_t).where(mine)).first()
        if row is not None:
            m = row._mapping
            expired = m["created_at"] < now - TTL
            abandoned = m["response"] == _PENDING and m["created_at"] < now - STALE
            if not (expired or abandoned):
                return False, m
            conn.execute(sa.delete(_t).where(mine))
        conn.execute(sa.delete(_t).where(_t.c.user == user, _t.c.created_at < now - TTL))
        conn.execute(
            sa.insert(_t).values(
                user=user, key=key, body_hash=digest, response=_PENDING, created_at=now
            )
        )
    return True, None


def claim(engine: Engine, user: str, key: str, digest: str) -> dict[str, Any] | None:
    """None: the caller holds the key and must submit; a dict: the 202 body to replay."""
    deadline = time.monotonic() + WAIT_SEC
    while True:
        try:
            claimed, row = _try_claim(engine, user, key, digest)
        except IntegrityError:  # another request claimed it between our read and insert
            claimed, row = False, None
        if claimed:
            return None
        if row is not None:
            if row["body_hash"] != digest:
                raise _reused()
            if row["response"] != _PENDING:
                return dict(row["response"])
        if time.monotonic() >= deadline:
            raise ApiError(
                409, "idempotency key in use", "the first request is still running", retry_after=1
            )
        time.sleep(0.1)


def complete(engine: Engine, user: str, key: str, response: dict[str, Any]) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.update(_t).where(_t.c.user == user, _t.c.key == key).values(response=response)
        )


def release(engine: Engine, user: str, key: str) -> None:
    """Forget a claim whose request failed, so the key can be used again."""
    with engine.begin() as conn:
        conn.execute(sa.delete(_t).where(_t.c.user == user, _t.c.key == key))
