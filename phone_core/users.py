"""Web-app users: the streamlit-authenticator credentials file at ``data_dir/auth.yaml``.

The file holds bcrypt-hashed passwords, one role per user (``admin`` or ``user``) and the
random cookie key of this install (generated on first use, never a constant in the repo).
Only this module writes it: atomically (temp file + rename) under a process lock and an
advisory file lock, so the launcher, the app and an admin adding a user cannot interleave.
Passwords are never logged; the generated ones are returned once to the caller.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import secrets
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import yaml
from pydantic import BaseModel

from phone_core.errors import InputError, NotFound
from phone_core.settings import Settings

log = logging.getLogger(__name__)

ROLES = ("admin", "user")
ADMIN_USERNAME = "admin"
COOKIE_NAME = "phone_enrich_auth"
COOKIE_EXPIRY_DAYS = 7.0
MIN_PASSWORD_LENGTH = 10
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,49}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_LOCK = threading.Lock()


class UserInfo(BaseModel):
    """A user as listed in the admin page (never the password hash)."""

    username: str
    name: str
    email: str
    role: str


def auth_file(settings: Settings) -> Path:
    return settings.data_dir / "auth.yaml"


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt()).decode("ascii")


def check_password(password: str, hashed: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode("utf-8"), hashed.encode("ascii"))
    except ValueError:
        return False


def generate_password() -> str:
    """A random password that is easy to copy (URL-safe, about 96 bits)."""
    return secrets.token_urlsafe(12)


def _empty_config() -> dict[str, Any]:
    return {
        "cookie": {
            "name": COOKIE_NAME,
            "key": secrets.token_hex(32),
            "expiry_days": COOKIE_EXPIRY_DAYS,
        },
        "credentials": {"usernames": {}},
    }


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        return _empty_config()
    loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(loaded, dict):
        raise InputError(f"{path} is not a valid credentials file")
    config: dict[str, Any] = loaded
    cookie = config.setdefault("cookie", {})
    cookie.setdefault("name", COOKIE_NAME)
    cookie.setdefault("expiry_days", COOKIE_EXPIRY_DAYS)
    if not cookie.get("key"):
        cookie["key"] = secrets.token_hex(32)
    credentials = config.setdefault("credentials", {})
    if not isinstance(credentials.get("usernames"), dict):
        credentials["usernames"] = {}
    return config


def _write(path: Path, config: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".auth-", suffix=".yaml", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            yaml.safe_dump(config, fh, default_flow_style=False, allow_unicode=True)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked(settings: Settings) -> Iterator[Path]:
    """Hold the in-process lock and an advisory lock file beside the credentials file."""
    path = auth_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _LOCK, open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield path
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def load_config(settings: Settings) -> dict[str, Any]:
    """The whole credentials config (cookie + credentials), as streamlit-authenticator wants."""
    with _locked(settings) as path:
        config = _read(path)
        if not path.exists():
            _write(path, config)
        return config


def _users(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    users: dict[str, dict[str, Any]] = config["credentials"]["usernames"]
    return users


def _entry(name: str, email: str, password: str, role: str) -> dict[str, Any]:
    return {
        "name": name,
        "email": email,
        "password": hash_password(password),
        "roles": [role],
        "failed_login_attempts": 0,
        "logged_in": False,
    }


def ensure_admin(settings: Settings) -> str | None:
    """Create user ``admin`` with a random password if missing; return that password once."""
    with _locked(settings) as path:
        config = _read(path)
        users = _users(config)
        if ADMIN_USERNAME in users:
            if not path.exists():
                _write(path, config)
            return None
        password = generate_password()
        users[ADMIN_USERNAME] = _entry("Administrator", "admin@localhost", password, "admin")
        _write(path, config)
    log.info("created the admin user in %s", path)
    return password


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise InputError(f"role must be one of {', '.join(ROLES)}")
    return role


def add_user(
    settings: Settings, username: str, name: str, email: str, password: str, role: str = "user"
) -> UserInfo:
    """Add a user (username lower-cased, as the login form compares it)."""
    username = username.strip().lower()
    name, email = name.strip(), email.strip()
    if not _USERNAME.match(username):
        raise InputError(
            "a username is 2-50 characters: lowercase letters, digits, '.', '_' or '-'"
        )
    if not name:
        raise InputError("give the user's name")
    if email and not _EMAIL.match(email):
        raise InputError("that email address does not look valid")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InputError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    _check_role(role)
    with _locked(settings) as path:
        config = _read(path)
        users = _users(config)
        if username in users:
            raise InputError(f"the user {username} already exists")
        users[username] = _entry(name, email, password, role)
        _write(path, config)
    log.info("added user %s with role %s", username, role)
    return UserInfo(username=username, name=name, email=email, role=role)


def reset_password(settings: Settings, username: str) -> str:
    """Give ``username`` a new random password and return it (shown once to the admin)."""
    username = username.strip().lower()
    password = generate_password()
    with _locked(settings) as path:
        config = _read(path)
        user = _users(config).get(username)
        if user is None:
            raise NotFound(f"no user {username}")
        user["password"] = hash_password(password)
        user["failed_login_attempts"] = 0
        _write(path, config)
    log.info("reset the password of user %s", username)
    return password


def set_role(settings: Settings, username: str, role: str) -> None:
    _check_role(role)
    with _locked(settings) as path:
        config = _read(path)
        user = _users(config).get(username)
        if user is None:
            raise NotFound(f"no user {username}")
        user["roles"] = [role]
        _write(path, config)


def role_of(entry: dict[str, Any]) -> str:
    roles = entry.get("roles") or []
    return "admin" if "admin" in roles else "user"


def list_users(settings: Settings) -> list[UserInfo]:
    config = load_config(settings)
    return [
        UserInfo(
            username=username,
            name=str(entry.get("name") or ""),
            email=str(entry.get("email") or ""),
            role=role_of(entry),
        )
        for username, entry in sorted(_users(config).items())
    ]


def verify(settings: Settings, username: str, password: str) -> bool:
    """Whether ``password`` is the password of ``username`` (for tests and the CLI)."""
    entry = _users(load_config(settings)).get(username.strip().lower())
    if entry is None:
        return False
    return check_password(password, str(entry.get("password", "")))
