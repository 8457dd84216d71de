"""Per-user preferences: the last column mapping used for a given set of headers.

A mapping is remembered under the signature of the file's headers (order and spelling
independent, see ``mapping.header_signature``), per user and per use (``scope``: a batch
upload or a directory load map to different fields). Stored headers are matched back to
the new file's headers by their normalised spelling, so ``First Name`` finds ``first_name``.

Also where a user wants to hear that a batch ended (``notify_settings``: a webhook URL,
checked by ``webhooks.check_url`` before it is saved) and the secret that signs their
notifications. The secret is kept as is (a signature needs it): it is shown once, when it
is made, and can be replaced at any time.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from phone_core import db
from phone_core.mapping import header_signature, normalize_header

BATCH = "batch"
DIRECTORY = "directory"


def signature(headers: Sequence[str], scope: str = BATCH) -> str:
    sig = header_signature(headers)
    if scope == BATCH:
        return sig
    return hashlib.sha256(f"{scope}\n{sig}".encode()).hexdigest()


def save_mapping(
    conn: Connection,
    user: str,
    headers: Sequence[str],
    mapping: Mapping[str, str | None],
    scope: str = BATCH,
) -> None:
    """Remember ``mapping`` (field -> header or None) for this user and header set."""
    sig = signature(headers, scope)
    value = {field: header for field, header in mapping.items()}
    t = db.saved_mappings
    updated = conn.execute(
        sa.update(t)
        .where(t.c.user == user, t.c.header_sig == sig)
        .values(mapping=value, updated_at=db.utcnow())
    )
    if updated.rowcount == 0:
        conn.execute(
            sa.insert(t).values(user=user, header_sig=sig, mapping=value, updated_at=db.utcnow())
        )


def load_mapping(
    conn: Connection, user: str, headers: Sequence[str], scope: str = BATCH
) -> dict[str, str | None] | None:
    """The mapping saved for this header set, with headers spelled as in ``headers``."""
    t = db.saved_mappings
    stored = conn.execute(
        sa.select(t.c.mapping).where(t.c.user == user, t.c.header_sig == signature(headers, scope))
    ).scalar()
    if not isinstance(stored, dict):
        return None
    by_norm = {normalize_header(h): h for h in headers}
    out: dict[str, str | None] = {}
    for field, header in stored.items():
        if header is None:
            out[str(field)] = None
        elif header in headers:
            out[str(field)] = str(header)
        else:
            out[str(field)] = by_norm.get(normalize_header(str(header)))
    return out


# --- notifications ------------------------------------------------------------------------

SECRET_PREFIX = "whsec_"


@dataclass(frozen=True)
class NotifySettings:
    webhook_url: str  # "": no webhook
    secret: str  # "": none made yet


def notify_settings(conn: Connection, user: str) -> NotifySettings:
    t = db.notify_settings
    row = conn.execute(sa.select(t.c.webhook_url, t.c.secret).where(t.c.user == user)).first()
    if row is None:
        return NotifySettings("", "")
    return NotifySettings(str(row[0] or ""), str(row[1] or ""))


def _put(conn: Connection, user: str, **values: str) -> None:
    t = db.notify_settings
    updated = conn.execute(
        sa.update(t).where(t.c.user == user).values(**values, updated_at=db.utcnow())
    )
    if updated.rowcount == 0:
        row = {"webhook_url": "", "secret": "", **values}
        conn.execute(sa.insert(t).values(user=user, updated_at=db.utcnow(), **row))


def set_webhook(conn: Connection, user: str, url: str) -> str | None:
    """Save the user's webhook URL ("" turns notifications off; the caller checked it).
    Returns a new signing secret when the user had none (to show once), else None."""
    fresh = None
    if url and not notify_settings(conn, user).secret:
        fresh = SECRET_PREFIX + secrets.token_hex(24)
        _put(conn, user, webhook_url=url, secret=fresh)
    else:
        _put(conn, user, webhook_url=url)
    return fresh


def new_notify_secret(conn: Connection, user: str) -> str:
    """Replace the user's signing secret; the new one is returned (to show once)."""
    fresh = SECRET_PREFIX + secrets.token_hex(24)
    _put(conn, user, secret=fresh)
    return fresh
