"""Web-app sessions: sign-in with a limit on wrong passwords, signed session cookies, and
the server-side check (on every rerun) that makes every session revocable.

- ``sign_in`` refuses a username (and a client address, when the web app sees one) with
  too many recent wrong passwords, before looking at the password (``phone_core.attempts``:
  the count is in the state DB, shared by every web-app process); unknown usernames cost
  the same bcrypt check as real ones and count the same, so neither the answer, its time
  nor the lockout tells which usernames exist.
- A session is (username, signed-in time on the database clock). The browser keeps it in
  a cookie signed with HMAC-SHA256 by a random key of the install (``install_secrets``,
  shared by every process on the state DB). ``check`` accepts it only while the user is
  active, the sign-in is not older than ``session_hours`` and not older than the user's
  ``sessions_valid_after`` (moved by sign-out, password change or reset, disable, role
  change and removal: ``phone_core.users``). So a copied or restored cookie is worthless
  after any of those, even though page scripts can read it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import secrets
import threading
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from phone_core import audit, db, users
from phone_core.attempts import FailedAttempts
from phone_core.errors import InputError
from phone_core.passwords import check_password, dummy_hash, hash_password
from phone_core.ratelimit import db_now
from phone_core.settings import Settings
from phone_core.users import UserInfo

COOKIE_NAME = "phone_enrich_session"
PREFIX = "web-auth:"
CLOCK_SLACK_SEC = 60.0  # a sign-in time this far ahead of the database clock is refused
WRONG = "Wrong username or password."
DISABLED = "This account is disabled. Ask an administrator to enable it."
_SECRET_NAME = "session_cookie_key"
_TOKEN_VERSION = "v1"
_MAX_TOKEN = 2048
_MAX_ADDRESS = 64
_lock = threading.Lock()
_secrets: dict[str, bytes] = {}
_limiters: dict[str, FailedAttempts] = {}


class SignInError(InputError):
    """Sign-in (or a password change) refused; the message is for the person at the form."""


class LockedOut(SignInError):
    """Too many wrong passwords lately: no password is checked for ``wait`` seconds."""

    def __init__(self, wait: int, account: bool) -> None:
        self.wait = wait
        self.account = account  # the username is locked (else the client address)
        whose = "for this account" if account else "from your network address"
        super().__init__(f"Too many failed sign-ins {whose}; try again in {wait_words(wait)}.")


@dataclass(frozen=True)
class Session:
    user: UserInfo
    signed_in_at: float  # epoch seconds, database clock


@dataclass(frozen=True)
class Claims:
    """What a valid session cookie says (still to be ``check``-ed against the registry)."""

    username: str
    issued_at: float
    expires_at: float


def wait_words(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


# --- wrong passwords --------------------------------------------------------------------


def account_subject(username: str) -> str:
    return f"{PREFIX}u:{username}"


def client_subject(address: str) -> str:
    if len(address) > _MAX_ADDRESS:
        address = hashlib.sha256(address.encode()).hexdigest()[:32]
    return f"{PREFIX}c:{address}"


def limiter(engine: Engine, settings: Settings) -> FailedAttempts:
    """This process's limiter of wrong passwords for ``engine`` (one, so it sweeps)."""
    key = f"{engine.url}|{settings.web_auth_max_failures}|{settings.web_auth_window_sec}"
    with _lock:
        guard = _limiters.get(key)
        if guard is None or guard.engine is not engine:
            guard = FailedAttempts(
                engine,
                PREFIX,
                settings.web_auth_max_failures,
                settings.web_auth_window_sec,
                settings.web_auth_max_lockout_sec,
            )
            _limiters[key] = guard
        return guard


def _refuse_if_locked(guard: FailedAttempts, subjects: list[str], account: str) -> None:
    if not subjects:
        return
    with guard.engine.begin() as conn:
        lockout = guard.check(conn, subjects)
    if lockout is not None:
        raise LockedOut(lockout.wait, account=account in lockout.subjects)


def db_clock(conn: Connection) -> float:
    """Now, in epoch seconds, on the database's clock (the clock of every session time)."""
    return float(conn.execute(sa.select(db_now(conn.dialect.name))).scalar_one())


def session_record(conn: Connection, username: str) -> tuple[UserInfo, float, float] | None:
    """(user, sessions valid after, database now) for the per-rerun session check."""
    now = db_now(conn.dialect.name)
    row = conn.execute(
        sa.select(db.users, now.label("db_now")).where(
            db.users.c.username == users.normalize(username)
        )
    ).first()
    if row is None:
        return None
    m = row._mapping
    return users.info(row), float(m["sessions_valid_after"]), float(m["db_now"])


def sign_in(
    engine: Engine, settings: Settings, username: str, password: str, client: str | None = None
) -> Session:
    """A new session for the right password of an active user; SignInError otherwise."""
    name = users.normalize(username)
    if not name or not password:
        raise SignInError("Enter your username and password.")
    account = account_subject(name)
    subjects = [account] if users.valid_username(name) else []
    if client:
        subjects.append(client_subject(client))
    guard = limiter(engine, settings)
    # Who tried: the username when it is a user's, never what an unknown one typed (it
    # may be an email address or a password typed in the wrong box).
    with engine.connect() as conn:
        known = users.get(conn, name, include_removed=True) is not None
    who = name if known else audit.UNKNOWN_USER
    ip = client or ""
    try:
        _refuse_if_locked(guard, subjects, account)
    except LockedOut:
        audit.record(engine, action=audit.SIGN_IN_LOCKED, actor=who, ip=ip, via="web")
        raise
    with engine.connect() as conn:
        found = users.credentials(conn, name)
    hashed = found[1] if found is not None and found[1] else dummy_hash()
    if not check_password(password, hashed) or found is None or not found[1]:
        guard.record_failure(subjects)
        audit.record(engine, action=audit.SIGN_IN_FAILED, actor=who, ip=ip, via="web")
        raise SignInError(WRONG)
    if found[0].disabled:
        audit.record(engine, action=audit.SIGN_IN_DISABLED, actor=who, ip=ip, via="web")
        raise SignInError(DISABLED)
    with engine.begin() as conn:
        audit.record(conn, action=audit.SIGN_IN, actor=who, ip=ip, via="web")
        return Session(found[0], db_clock(conn))


def check(
    engine: Engine,
    settings: Settings,
    username: str,
    signed_in_at: float,
    expires_at: float | None = None,
) -> UserInfo | None:
    """The user of a session that is still valid (registry read now); None when it ended."""
    with engine.connect() as conn:
        record = session_record(conn, username)
    if record is None:
        return None
    user, valid_after, now = record
    if not user.active or signed_in_at < valid_after:
        return None
    if now - signed_in_at > settings.session_hours * 3600 or signed_in_at > now + CLOCK_SLACK_SEC:
        return None
    if expires_at is not None and now > expires_at:
        return None
    return user


def login_credentials(engine: Engine) -> dict[str, dict[str, Any]]:
    """The sign-in form's credentials (streamlit-authenticator's ``usernames`` mapping):
    every active user with a password, their bcrypt hash, name and role, read now."""
    t = db.users
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t).where(t.c.removed_at.is_(None))).all()
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        user = users.info(row)
        if user.active and row.password_hash:
            found[user.username] = {
                "name": user.name or user.username,
                "password": row.password_hash,
                "roles": [user.role],
            }
    return found


def sign_out(engine: Engine, username: str) -> None:
    """End every session of ``username`` (every browser: a copied cookie too)."""
    with engine.begin() as conn:
        users.end_sessions(conn, username)
        audit.record(conn, action=audit.SIGN_OUT, actor=users.normalize(username), via="web")


def change_password(
    engine: Engine, settings: Settings, username: str, current: str, new: str
) -> float:
    """A signed-in user's own password change. The current password is checked (wrong
    ones count as failed sign-ins); every other session ends. Returns the sign-in time
    the caller's session continues with."""
    name = users.normalize(username)
    account = account_subject(name)
    guard = limiter(engine, settings)
    _refuse_if_locked(guard, [account], account)
    with engine.connect() as conn:
        found = users.credentials(conn, name)
    if found is None or not found[0].active:
        raise SignInError("Your session has ended. Please sign in again.")
    if not check_password(current, found[1] or dummy_hash()):
        guard.record_failure([account])
        raise SignInError("The current password is wrong.")
    if new == current:
        raise InputError("the new password must differ from the current one")
    hashed = hash_password(new)
    with engine.begin() as conn:
        audit.record(conn, action=audit.PASSWORD_CHANGE, target=name, actor=name)
        return users.set_password_hash(conn, name, hashed)


# --- the session cookie -----------------------------------------------------------------


def cookie_key(engine: Engine) -> bytes:
    """The install's random cookie-signing key (made by the first process that asks)."""
    url = str(engine.url)
    with _lock:
        if url in _secrets:
            return _secrets[url]
    t = db.install_secrets
    with engine.begin() as conn:
        fresh = {"name": _SECRET_NAME, "value": secrets.token_hex(32), "created_at": db.utcnow()}
        db.insert_ignore(conn, t, fresh)  # the first process to ask makes it
        value = conn.execute(sa.select(t.c.value).where(t.c.name == _SECRET_NAME)).scalar_one()
    key = bytes.fromhex(str(value))
    with _lock:
        _secrets[url] = key
    return key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(key: bytes, body: str) -> str:
    return _b64(hmac.new(key, f"{_TOKEN_VERSION}.{body}".encode(), hashlib.sha256).digest())


def issue_token(
    engine: Engine, settings: Settings, username: str, signed_in_at: float
) -> tuple[str, float]:
    """(cookie value, lifetime in seconds) for the session of ``username`` that signed in
    at ``signed_in_at``."""
    lifetime = settings.session_hours * 3600
    claims = {"u": username, "iat": signed_in_at, "exp": signed_in_at + lifetime}
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{_TOKEN_VERSION}.{body}.{_sign(cookie_key(engine), body)}", lifetime


def read_token(engine: Engine, token: str) -> Claims | None:
    """The claims of a cookie signed by this install; None for anything else (the expiry
    and the registry are checked by ``check``)."""
    if not token or len(token) > _MAX_TOKEN:
        return None
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != _TOKEN_VERSION:
        return None
    if not hmac.compare_digest(parts[2], _sign(cookie_key(engine), parts[1])):
        return None
    try:
        claims = json.loads(_unb64(parts[1]))
        return Claims(str(claims["u"]), float(claims["iat"]), float(claims["exp"]))
    except (ValueError, KeyError, TypeError):
        return None
