"""Passwords: the rule, bcrypt hashes, random ones. Never logged, never stored in clear.

bcrypt is slow on purpose (about 0.2 s per hash or check): call these outside any
database transaction.
"""

from __future__ import annotations

import secrets
import threading

import bcrypt

from phone_core.errors import InputError

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 72  # bcrypt reads no further: a longer one would be truncated
_lock = threading.Lock()
_dummy: list[str] = []


def check_password_rule(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InputError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password.encode("utf-8")) > MAX_PASSWORD_LENGTH:
        raise InputError(f"a password may have at most {MAX_PASSWORD_LENGTH} bytes")


def hash_password(password: str) -> str:
    """The bcrypt hash of an acceptable password."""
    check_password_rule(password)
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt()).decode("ascii")


def check_password(password: str, hashed: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode("utf-8"), hashed.encode("ascii"))
    except ValueError:  # no password set (""), not a bcrypt hash, or over 72 bytes
        return False


def generate_password() -> str:
    """A random password that is easy to copy (URL-safe, 96 bits)."""
    return secrets.token_urlsafe(12)


def dummy_hash() -> str:
    """A hash to check unknown users against, so that they take as long as real ones."""
    with _lock:
        if not _dummy:
            _dummy.append(bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt()).decode())
        return _dummy[0]
