"""The user registry: who may sign in, with which role, and whether they still may.

One ``users`` table in the state DB (``db.users``), written only here, so every web-app,
API and CLI process on one database sees the same users at once. A user is ``active``,
``disabled`` (cannot sign in, API keys refused; can be enabled again) or ``removed`` (a
tombstone: runs, ledger and keys keep their owner for the audit, the email and password
are erased, the keys revoked, and the username is never given out again).

Every change that should end a user's web sessions (password change or reset, disable,
role change, removal, sign-out) moves ``sessions_valid_after`` to the database's clock;
``phone_core.sessions`` compares it with each session's sign-in time on every rerun.

Passwords are bcrypt hashes (``phone_core.passwords``), never logged; generated ones are
returned once to the caller. The version-1 credentials file ``auth.yaml`` is imported
once (``import_legacy_file``).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from pydantic import BaseModel
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from phone_core import audit, db, keys
from phone_core.errors import InputError, NotFound
from phone_core.passwords import MIN_PASSWORD_LENGTH as MIN_PASSWORD_LENGTH
from phone_core.passwords import check_password as check_password
from phone_core.passwords import generate_password as generate_password
from phone_core.passwords import hash_password as hash_password
from phone_core.ratelimit import db_now
from phone_core.settings import Settings

log = logging.getLogger(__name__)

ROLES = ("admin", "user")
ADMIN_ROLE = "admin"
ADMIN_USERNAME = "admin"
MAX_TEXT = 200
LEGACY_FILE = "auth.yaml"
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,49}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_t = db.users


class UserInfo(BaseModel):
    """A user as the app and the CLI show it (never the password hash)."""

    username: str
    name: str
    email: str
    role: str
    disabled: bool = False
    removed: bool = False
    created_at: datetime | None = None

    @property
    def active(self) -> bool:
        return not (self.disabled or self.removed)

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN_ROLE

    @property
    def status(self) -> str:
        return "removed" if self.removed else "disabled" if self.disabled else "active"


# --- reading ----------------------------------------------------------------------------


def normalize(username: str) -> str:
    """Usernames compare lower-cased and stripped, as the sign-in form reads them."""
    return username.strip().lower()


def valid_username(username: str) -> bool:
    return bool(_USERNAME.match(username))


def info(row: Any) -> UserInfo:
    m = row._mapping
    fields = {k: m[k] for k in ("username", "name", "email", "role", "created_at")}
    return UserInfo(**fields, disabled=bool(m["disabled"]), removed=m["removed_at"] is not None)


def _row(conn: Connection, username: str) -> Any:
    return conn.execute(sa.select(_t).where(_t.c.username == normalize(username))).first()


def get(conn: Connection, username: str, *, include_removed: bool = False) -> UserInfo | None:
    row = _row(conn, username)
    if row is None or (row.removed_at is not None and not include_removed):
        return None
    return info(row)


def require(conn: Connection, username: str) -> UserInfo:
    """The user (not removed), or NotFound."""
    info = get(conn, username)
    if info is None:
        raise NotFound(f"no user {normalize(username)}")
    return info


def list_users(conn: Connection, *, include_removed: bool = False) -> list[UserInfo]:
    stmt = sa.select(_t).order_by(_t.c.username)
    if not include_removed:
        stmt = stmt.where(_t.c.removed_at.is_(None))
    return [info(r) for r in conn.execute(stmt)]


def credentials(conn: Connection, username: str) -> tuple[UserInfo, str] | None:
    """(user, password hash) of a user that is not removed; None otherwise."""
    row = _row(conn, username)
    return None if row is None or row.removed_at is not None else (info(row), row.password_hash)


def verify(engine: Engine, username: str, password: str) -> bool:
    """Whether ``password`` is the password of the active user ``username``."""
    with engine.connect() as conn:
        found = credentials(conn, username)
    return found is not None and found[0].active and check_password(password, found[1])


# --- writing ----------------------------------------------------------------------------


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise InputError(f"role must be one of {', '.join(ROLES)}")


def _check_fields(username: str, name: str, email: str, role: str) -> None:
    if not valid_username(username):
        raise InputError(
            "a username is 2-50 characters: lowercase letters, digits, '.', '_' or '-'"
        )
    if not name:
        raise InputError("give the user's name")
    if len(name) > MAX_TEXT or len(email) > MAX_TEXT:
        raise InputError(f"a name or email has at most {MAX_TEXT} characters")
    if email and not _EMAIL.match(email):
        raise InputError("that email address does not look valid")
    _check_role(role)


def add(
    conn: Connection,
    username: str,
    name: str,
    email: str = "",
    role: str = "user",
    *,
    password_hash: str = "",
) -> UserInfo:
    """Add a user. ``password_hash`` from ``hash_password`` (empty: no password yet, so no
    web sign-in until an admin resets it). A removed user's username is refused."""
    username, name, email = normalize(username), name.strip(), email.strip()
    _check_fields(username, name, email, role)
    existing = get(conn, username, include_removed=True)
    if existing is not None:
        raise InputError(
            f"the username {username} belonged to a removed user and is not given out "
            "again; choose another"
            if existing.removed
            else f"the user {username} already exists"
        )
    now = db.utcnow()
    try:
        values = {"username": username, "name": name, "email": email, "role": role}
        conn.execute(
            sa.insert(_t).values(
                **values,
                password_hash=password_hash,
                disabled=False,
                sessions_valid_after=0.0,
                created_at=now,
                updated_at=now,
            )
        )
    except IntegrityError:  # added at the same moment by another process: the caller's
        # transaction is spoilt and rolls back on this error
        raise InputError(f"the user {username} already exists") from None
    log.info("added user %s with role %s", username, role)
    audit.record(conn, action=audit.USER_ADD, target=username, detail={"role": role})
    return UserInfo(username=username, name=name, email=email, role=role, created_at=now)


def _active_admins(conn: Connection) -> list[str]:
    """Usernames of the active admins, rows locked (PostgreSQL) so two demotions at once
    cannot both pass the last-admin check."""
    stmt = (
        sa.select(_t.c.username)
        .where(_t.c.role == ADMIN_ROLE, _t.c.disabled.is_(False), _t.c.removed_at.is_(None))
        .with_for_update()
    )
    return [str(u) for u in conn.execute(stmt).scalars()]


def _keep_an_admin(conn: Connection, username: str) -> None:
    if _active_admins(conn) == [username]:
        raise InputError(f"{username} is the last active admin; make another admin first")


def _not_yourself(username: str, by: str | None, what: str) -> None:
    if by is not None and normalize(by) == username:
        raise InputError(f"you cannot {what} your own account")


def _update(conn: Connection, username: str, end_sessions: bool, **values: Any) -> float:
    """Update a user that is not removed; returns ``sessions_valid_after`` afterwards."""
    if end_sessions:
        values["sessions_valid_after"] = db_now(conn.dialect.name)
    row = conn.execute(
        sa.update(_t)
        .where(_t.c.username == username, _t.c.removed_at.is_(None))
        .values(updated_at=db.utcnow(), **values)
        .returning(_t.c.sessions_valid_after)
    ).first()
    if row is None:
        raise NotFound(f"no user {username}")
    return float(row[0])


def set_password_hash(conn: Connection, username: str, password_hash: str) -> float:
    """New password (ends every session of the user); returns the new session epoch."""
    username = normalize(username)
    valid_after = _update(conn, username, True, password_hash=password_hash)
    log.info("changed the password of user %s", username)
    return valid_after


def reset_password(engine: Engine, username: str, *, by: str | None = None) -> str:
    """Give ``username`` a new random password (their sessions end); returned once. An
    admin resets others' passwords: their own is changed with the current one."""
    username = normalize(username)
    _not_yourself(username, by, "reset the password of")
    with engine.connect() as conn:
        require(conn, username)
    password = generate_password()
    hashed = hash_password(password)
    with engine.begin() as conn:
        set_password_hash(conn, username, hashed)
        audit.record(conn, action=audit.PASSWORD_RESET, target=username, actor=by)
    return password


def end_sessions(conn: Connection, username: str) -> float:
    """Sign the user out everywhere; returns the new session epoch."""
    return _update(conn, normalize(username), True)


def set_role(conn: Connection, username: str, role: str, *, by: str | None = None) -> UserInfo:
    username = normalize(username)
    _check_role(role)
    user = require(conn, username)
    if user.role == role:
        return user
    _not_yourself(username, by, "change the role of")
    if user.is_admin:
        _keep_an_admin(conn, username)
    _update(conn, username, True, role=role)
    log.info("user %s now has role %s", username, role)
    audit.record(
        conn, action=audit.USER_ROLE, target=username, detail={"from": user.role, "to": role},
        actor=by,
    )  # fmt: skip
    return require(conn, username)


def disable(conn: Connection, username: str, *, by: str | None = None) -> UserInfo:
    """Stop the user from signing in; their sessions end and their API keys are refused."""
    username = normalize(username)
    user = require(conn, username)
    _not_yourself(username, by, "disable")
    if user.is_admin and not user.disabled:
        _keep_an_admin(conn, username)
    _update(conn, username, True, disabled=True)
    log.info("disabled user %s", username)
    audit.record(conn, action=audit.USER_DISABLE, target=username, actor=by)
    return require(conn, username)


def enable(conn: Connection, username: str) -> UserInfo:
    username = normalize(username)
    require(conn, username)
    _update(conn, username, False, disabled=False)
    log.info("enabled user %s", username)
    audit.record(conn, action=audit.USER_ENABLE, target=username)
    return require(conn, username)


def remove(conn: Connection, username: str, *, by: str | None = None) -> UserInfo:
    """Remove for good: a tombstone keeps the username (never reused) and the name for
    the audit of runs and ledger; email and password are erased, API keys revoked."""
    username = normalize(username)
    user = require(conn, username)
    _not_yourself(username, by, "remove")
    if user.is_admin and not user.disabled:
        _keep_an_admin(conn, username)
    _update(conn, username, True, email="", password_hash="", disabled=True)
    conn.execute(sa.update(_t).where(_t.c.username == username).values(removed_at=db.utcnow()))
    revoked = keys.revoke_all(conn, username)
    log.info("removed user %s (%d API keys revoked)", username, revoked)
    audit.record(
        conn, action=audit.USER_REMOVE, target=username, detail={"keys_revoked": revoked},
        actor=by,
    )  # fmt: skip
    info = get(conn, username, include_removed=True)
    assert info is not None
    return info


# --- the first admin, and the version-1 credentials file --------------------------------


def _ensure_admin(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if _active_admins(conn) or get(conn, ADMIN_USERNAME, include_removed=True):
            return None
    password = generate_password()
    hashed = hash_password(password)
    try:
        with engine.begin() as conn:
            add(conn, ADMIN_USERNAME, "Administrator", "", ADMIN_ROLE, password_hash=hashed)
    except InputError:  # another process created it first
        return None
    return password


def ensure_admin(target: Settings | Engine) -> str | None:
    """Create user ``admin`` with a random password when the registry has no active admin
    and the name is free; return that password once (else None).

    With ``Settings`` (an entry point before its runtime exists) the state DB is opened,
    migrated and the version-1 credentials file imported first."""
    if isinstance(target, Engine):
        return _ensure_admin(target)
    target.ensure_data_dir()
    engine = db.make_engine(target.state_db_url)
    try:
        db.migrate(engine)
        import_legacy_file(engine, target.data_dir)
        return _ensure_admin(engine)
    finally:
        engine.dispose()


def _legacy_entries(path: Path) -> list[dict[str, str]]:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entries = (loaded.get("credentials") or {}).get("usernames") or {}
    if not isinstance(entries, dict):
        raise ValueError("no credentials.usernames mapping")
    out = []
    for username, entry in entries.items():
        entry = entry if isinstance(entry, dict) else {}
        email = str(entry.get("email") or "").strip()
        hashed = str(entry.get("password") or "")
        out.append(
            {
                "username": str(username),
                "name": str(entry.get("name") or username).strip()[:MAX_TEXT],
                "email": email if _EMAIL.match(email) and len(email) <= MAX_TEXT else "",
                "role": ADMIN_ROLE if ADMIN_ROLE in (entry.get("roles") or []) else "user",
                "password_hash": hashed if hashed.startswith("$2") else "",
            }
        )
    return out


def import_legacy_file(engine: Engine, data_dir: Path) -> int:
    """Import ``data_dir/auth.yaml`` (version 1's streamlit-authenticator credentials)
    once: users missing from the registry are added with their bcrypt hashes and roles
    (what the registry has is never overwritten), then the file is renamed
    ``auth.yaml.imported`` so it is never read again. Returns how many were added."""
    path = data_dir / LEGACY_FILE
    if not path.is_file():
        return 0
    fd = os.open(data_dir / ".auth-import.lock", os.O_RDWR | os.O_CREAT, 0o600)
    with os.fdopen(fd, "r+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # one process of this data dir at a time
        if not path.is_file():
            return 0
        try:
            entries = _legacy_entries(path)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            log.warning("cannot import %s (%s); it is left in place", path, type(exc).__name__)
            return 0
        added = 0
        with engine.begin() as conn:
            for e in entries:
                if get(conn, e["username"], include_removed=True) is None:
                    with contextlib.suppress(InputError):  # e.g. a name the rules refuse
                        add(conn, **e)
                        added += 1
        os.replace(path, path.with_name(LEGACY_FILE + ".imported"))
        with contextlib.suppress(OSError):
            (data_dir / "auth.lock").unlink()  # version 1's lock file
    log.info("imported %d of %d users from %s", added, len(entries), path)
    return added
