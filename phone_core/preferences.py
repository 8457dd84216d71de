"""Per-user preferences: the last column mapping used for a given set of headers.

A mapping is remembered under the signature of the file's headers (order and spelling
independent, see ``mapping.header_signature``), per user and per use (``scope``: a batch
upload or a directory load map to different fields). Stored headers are matched back to
the new file's headers by their normalised spelling, so ``First Name`` finds ``first_name``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

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
