"""API keys: created in the web app or the CLI, shown once, stored as a SHA-256 hash,
revocable by their owner or an admin.

A key reads ``pe_<key_id>_<secret>``; the id part finds the row, the secret is compared
with ``hmac.compare_digest`` against its hash. Keys are random (32 bytes), so a plain
SHA-256 is enough: there is nothing to brute-force as with passwords.

A key belongs to a user of the registry (``db.users``, read here, written by
``phone_core.users``): only an active user gets a key, and a key works only while its
user is active (a disabled, removed or unknown user's key is refused at once).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.engine import Connection

from phone_core import audit, db
from phone_core.errors import InputError, NotFound

PREFIX = "pe"
LAST_USED_RESOLUTION = timedelta(minutes=1)


class RevokedKey(InputError):
    """A real key that was revoked: refused, but not a guess at a secret."""


class UserNotActive(RevokedKey):
    """A real key whose user is disabled, removed or not in the registry."""


def _user_active(conn: Connection, user: str) -> bool:
    u = db.users
    row = conn.execute(sa.select(u.c.disabled, u.c.removed_at).where(u.c.username == user)).first()
    return row is not None and not row.disabled and row.removed_at is None


class ApiKey(BaseModel):
    key_id: str
    user: str
    label: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create(conn: Connection, user: str, label: str = "") -> tuple[ApiKey, str]:
    """A new key for ``user``; returns the record and the full key (shown once only)."""
    label = label.strip()[:200]
    if not _user_active(conn, user):
        raise InputError(f"there is no active user {user}")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    now = db.utcnow()
    conn.execute(
        sa.insert(db.api_keys).values(
            key_id=key_id, user=user, label=label, secret_hash=_hash(secret), created_at=now
        )
    )
    record = ApiKey(
        key_id=key_id, user=user, label=label, created_at=now, last_used_at=None, revoked_at=None
    )
    audit.record(conn, action=audit.KEY_CREATE, target=key_id, detail={"user": user})
    return record, f"{PREFIX}_{key_id}_{secret}"


def list_keys(conn: Connection, user: str | None = None) -> list[ApiKey]:
    stmt = sa.select(db.api_keys).order_by(db.api_keys.c.created_at.desc())
    if user is not None:
        stmt = stmt.where(db.api_keys.c.user == user)
    return [
        ApiKey(**{k: v for k, v in r._mapping.items() if k != "secret_hash"})
        for r in conn.execute(stmt)
    ]


def revoke(conn: Connection, user: str, key_id: str) -> None:
    result = conn.execute(
        sa.update(db.api_keys)
        .where(
            db.api_keys.c.key_id == key_id,
            db.api_keys.c.user == user,
            db.api_keys.c.revoked_at.is_(None),
        )
        .values(revoked_at=db.utcnow())
    )
    if result.rowcount != 1:
        raise NotFound("no such active key")
    audit.record(conn, action=audit.KEY_REVOKE, target=key_id, detail={"user": user})


def revoke_any(conn: Connection, key_id: str) -> ApiKey:
    """An admin revokes a key of any user; returns it as it is now."""
    revoked = conn.execute(
        sa.update(db.api_keys)
        .where(db.api_keys.c.key_id == key_id, db.api_keys.c.revoked_at.is_(None))
        .values(revoked_at=db.utcnow())
    ).rowcount
    row = conn.execute(sa.select(db.api_keys).where(db.api_keys.c.key_id == key_id)).first()
    if row is None:
        raise NotFound("no such key")
    if revoked:
        audit.record(conn, action=audit.KEY_REVOKE, target=key_id, detail={"user": row.user})
    return ApiKey(**{k: v for k, v in row._mapping.items() if k != "secret_hash"})


def revoke_all(conn: Connection, user: str) -> int:
    """Revoke every active key of ``user``; returns how many."""
    result = conn.execute(
        sa.update(db.api_keys)
        .where(db.api_keys.c.user == user, db.api_keys.c.revoked_at.is_(None))
        .values(revoked_at=db.utcnow())
    )
    return int(result.rowcount or 0)


def verify(conn: Connection, presented: str) -> str:
    """The user a presented key acts as; raises InputError for any bad key, RevokedKey
    for a revoked one and UserNotActive when its user may not use it (any more)."""
    parts = presented.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        raise InputError("malformed API key")
    k, u = db.api_keys, db.users
    row = conn.execute(
        sa.select(k, u.c.username.label("registered"), u.c.disabled, u.c.removed_at)
        .select_from(k.outerjoin(u, u.c.username == k.c.user))
        .where(k.c.key_id == parts[1])
    ).first()
    if row is None or not hmac.compare_digest(row._mapping["secret_hash"], _hash(parts[2])):
        raise InputError("unknown API key")
    if row._mapping["revoked_at"] is not None:
        raise RevokedKey("this API key was revoked")
    if row.registered is None or row.disabled or row.removed_at is not None:
        raise UserNotActive("the user of this API key is disabled or removed")
    now = db.utcnow()
    last = row._mapping["last_used_at"]
    if last is None or now - last > LAST_USED_RESOLUTION:  # not a write on every request
        conn.execute(
            sa.update(db.api_keys).where(db.api_keys.c.key_id == parts[1]).values(last_used_at=now)
        )
    return str(row._mapping["user"])
