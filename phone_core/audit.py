"""The audit log: who did what, when and from where. Append-only; the only writer of
``audit_log``, and it only ever inserts (there is no update or delete path, and the
retention purge leaves this table alone: it holds no personal data).

The API, for every module that performs an admin or security-relevant action::

    audit.record(conn_or_engine, action="user_disable", target="bob",
                 detail={"keys_revoked": 2}, actor=None, ip=None)

- ``conn_or_engine``: the action's own ``Connection`` when it has one (the row commits or
  rolls back with the action), else an ``Engine`` (a transaction of its own).
- ``actor``: a username, ``cli:<os user>``, or ``system``. ``None`` takes the actor of
  the current entry point (``acting``/``set_actor``: the web app's signed-in user, the
  API key's user, the CLI's OS user); nobody set -> ``system``.
- ``ip``: where it came from (``None``: the entry point's, else empty); ``via`` likewise
  (``web``, ``api``, ``cli``).
- ``target``: what was acted on, by id: a username, a key id, a list name, a run id.
- ``detail``: small flat facts (str, int or bool values), e.g. an amount or a count.

What never goes in: secrets (passwords, keys, tokens), and personal data of the people in
the records (emails, phones, LinkedIn, names): ``record`` replaces a detail value or
target that looks like an email or phone number by a "redacted" mark. It does not raise:
the action it describes has happened (an API key id can be all digits, a list can be
named by a number). Usernames are fine (they identify staff accounts).

Actions of the other compliance features call the same function: ``ERASURE_*``
(``target``: the erasure receipt id, ``detail``: counts touched) and ``PURGE``
(``detail``: counts purged per store). An erasure needs nothing erased here: the log
never holds the person.
"""

from __future__ import annotations

import contextvars
import csv
import getpass
import io
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from phone_core import db

# The actions recorded (``action`` column). Kept as constants so pages can offer a filter.
SIGN_IN = "sign_in"
SIGN_IN_FAILED = "sign_in_failed"
SIGN_IN_LOCKED = "sign_in_locked_out"
SIGN_IN_DISABLED = "sign_in_refused_disabled"
SIGN_OUT = "sign_out"
PASSWORD_CHANGE = "password_change"
PASSWORD_RESET = "password_reset"
USER_ADD = "user_add"
USER_DISABLE = "user_disable"
USER_ENABLE = "user_enable"
USER_REMOVE = "user_remove"
USER_ROLE = "user_role_change"
KEY_CREATE = "api_key_create"
KEY_REVOKE = "api_key_revoke"
CREDIT_GRANT = "credit_grant"
CREDIT_LIMIT = "credit_limit_set"
DIRECTORY_LOAD = "directory_load"
SUPPRESSION_LOAD = "suppression_load"
SUPPRESSION_REMOVE = "suppression_remove"
SUPPRESSION_RECHECK = "suppression_recheck"
SETTINGS_CHANGE = "settings_change"
AUDIT_EXPORT = "audit_export"
ERASURE_REQUESTED = "erasure_requested"  # the erasure workflow (issue 13 item 3)
ERASURE_DONE = "erasure_done"
PURGE = "retention_purge"  # the retention job (issue 13 item 2)

ACTIONS: tuple[str, ...] = (
    SIGN_IN, SIGN_IN_FAILED, SIGN_IN_LOCKED, SIGN_IN_DISABLED, SIGN_OUT, PASSWORD_CHANGE,
    PASSWORD_RESET, USER_ADD, USER_DISABLE, USER_ENABLE, USER_REMOVE, USER_ROLE, KEY_CREATE,
    KEY_REVOKE, CREDIT_GRANT, CREDIT_LIMIT, DIRECTORY_LOAD, SUPPRESSION_LOAD,
    SUPPRESSION_REMOVE, SUPPRESSION_RECHECK, SETTINGS_CHANGE, AUDIT_EXPORT, ERASURE_REQUESTED,
    ERASURE_DONE, PURGE,
)  # fmt: skip

SYSTEM = "system"
UNKNOWN_USER = "(unknown user)"  # a failed sign-in as a username that does not exist
COLUMNS: tuple[str, ...] = ("id", "at", "actor", "action", "target", "detail", "ip", "via")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
_PHONE_CHARS = re.compile(r"\+?[\d\s().\-/]+")
_MAX_DETAIL = 20
_REDACTED = "(redacted: looked like an email or phone number)"
DetailValue = str | int | bool


@dataclass(frozen=True)
class Who:
    actor: str
    ip: str = ""
    via: str = ""


_current: contextvars.ContextVar[Who | None] = contextvars.ContextVar("audit_who", default=None)


def _text(value: object, size: int) -> str:
    return value[:size] if isinstance(value, str) else ""


def set_actor(actor: str, ip: object = "", via: str = "") -> None:
    """The actor of what this thread/task does from now on (the web app sets it on every
    rerun once the session is checked)."""
    _current.set(Who(_text(actor, 200), _text(ip, 64), _text(via, 20)))


def clear_actor() -> None:
    _current.set(None)


@contextmanager
def acting(actor: str, ip: str = "", via: str = "") -> Iterator[None]:
    """Within the block, ``record`` defaults to this actor (API requests, CLI commands)."""
    token = _current.set(Who(_text(actor, 200), _text(ip, 64), _text(via, 20)))
    try:
        yield
    finally:
        _current.reset(token)


def cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in this environment
        return "cli"


def current() -> Who:
    return _current.get() or Who(SYSTEM)


def _looks_personal(value: str) -> bool:
    text = value.strip()
    digits = sum(c.isdigit() for c in text)
    return bool(_EMAIL.search(text) or (digits >= 10 and _PHONE_CHARS.fullmatch(text)))


def _clean_detail(detail: Mapping[str, DetailValue] | None) -> dict[str, DetailValue]:
    out: dict[str, DetailValue] = {}
    for key, value in list((detail or {}).items())[:_MAX_DETAIL]:
        if isinstance(value, str):
            value = _REDACTED if _looks_personal(value) else value[:200]
        elif not isinstance(value, (int, bool)):
            raise TypeError(f"audit detail {key!r} must be a str, int or bool")
        out[str(key)[:50]] = value
    return out


def record(
    conn_or_engine: Connection | Engine,
    *,
    action: str,
    target: str = "",
    detail: Mapping[str, DetailValue] | None = None,
    actor: str | None = None,
    ip: str | None = None,
    via: str | None = None,
) -> None:
    """Append one row (in the caller's transaction when given a Connection)."""
    if not action or len(action) > 50:
        raise ValueError("an audit action is 1 to 50 characters")
    if _looks_personal(target):  # e.g. a list named by a number: kept out, action recorded
        target = _REDACTED
    who = current()
    values = {
        "at": db.utcnow(),
        "actor": _text(actor if actor is not None else who.actor, 200) or SYSTEM,
        "action": action,
        "target": target[:200],
        "detail": _clean_detail(detail),
        "ip": _text(ip if ip is not None else who.ip, 64),
        "via": _text(via if via is not None else who.via, 20),
    }
    if isinstance(conn_or_engine, Engine):
        with conn_or_engine.begin() as conn:
            conn.execute(sa.insert(db.audit_log).values(**values))
    else:
        conn_or_engine.execute(sa.insert(db.audit_log).values(**values))


def note_settings(engine: Engine, values: Mapping[str, DetailValue]) -> bool:
    """Record ``SETTINGS_CHANGE`` when the settings that change spending (prices, the
    waterfall, the do-not-call mode, ...) differ from those last recorded: they are
    environment variables, so a process start is when they change. True when recorded."""
    t = db.audit_log
    with engine.begin() as conn:
        last = conn.execute(
            sa.select(t.c.detail)
            .where(t.c.action == SETTINGS_CHANGE)
            .order_by(t.c.id.desc())
            .limit(1)
        ).scalar()
        if last is not None and dict(last) == dict(values):
            return False
        record(conn, action=SETTINGS_CHANGE, target="spending settings", detail=values,
               actor=SYSTEM, ip="", via="startup")  # fmt: skip
    return True


@dataclass(frozen=True)
class Entry:
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, Any]
    ip: str
    via: str

    def as_row(self) -> list[str]:
        detail = "; ".join(f"{k}={v}" for k, v in sorted(self.detail.items()))
        return [
            str(self.id), self.at.strftime("%Y-%m-%dT%H:%M:%SZ"), self.actor, self.action,
            self.target, detail, self.ip, self.via,
        ]  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "detail": dict(self.detail),
            "ip": self.ip,
            "via": self.via,
        }


MAX_ROWS = 10_000


def query(
    conn: Connection,
    *,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 500,
    before_id: int | None = None,
) -> list[Entry]:
    """Newest first, filtered; ``until`` is exclusive; ``before_id`` pages back."""
    t = db.audit_log
    stmt = sa.select(t).order_by(t.c.id.desc()).limit(max(1, min(limit, MAX_ROWS)))
    if actor:
        stmt = stmt.where(t.c.actor == actor)
    if action:
        stmt = stmt.where(t.c.action == action)
    if since is not None:
        stmt = stmt.where(t.c.at >= since)
    if until is not None:
        stmt = stmt.where(t.c.at < until)
    if before_id is not None:
        stmt = stmt.where(t.c.id < before_id)
    return [
        Entry(
            id=int(m["id"]),
            at=m["at"],
            actor=str(m["actor"]),
            action=str(m["action"]),
            target=str(m["target"]),
            detail=dict(m["detail"] or {}),
            ip=str(m["ip"]),
            via=str(m["via"]),
        )
        for m in (r._mapping for r in conn.execute(stmt))
    ]


def actors(conn: Connection) -> list[str]:
    t = db.audit_log
    return [str(a) for a in conn.execute(sa.select(t.c.actor).distinct().order_by(t.c.actor))]


def to_csv(entries: list[Entry]) -> bytes:
    """The entries as CSV (UTF-8 with BOM, for spreadsheets); cells that a spreadsheet
    would run as a formula are quoted with a leading apostrophe."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for e in entries:
        writer.writerow([("'" + c) if c[:1] in ("=", "+", "-", "@") else c for c in e.as_row()])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")
