"""Secrets at rest: Fernet (``cryptography``) with the install's key.

The key is ``PHONE_SECRETS_KEY`` when set (required when several machines share one state
DB), else ``<data_dir>/secrets.key``, generated once with mode 0600 (written to a private
temporary file and linked into place, so two processes starting at once agree on one key).
Whoever reads the state DB alone cannot read what is stored with it. Neither the key nor
any plaintext is ever logged.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from phone_core.errors import InputError
from phone_core.settings import PRIVATE_FILE, Settings

log = logging.getLogger(__name__)
KEY_FILE = "secrets.key"
_lock = threading.Lock()
_cache: dict[str, Fernet] = {}


def _file_key(data_dir: Path) -> bytes:
    path = data_dir / KEY_FILE
    with contextlib.suppress(FileNotFoundError):
        key = path.read_bytes().strip()
        if key:
            return key
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = data_dir / f".{KEY_FILE}.{os.getpid()}.{threading.get_ident()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE)
    try:
        os.write(fd, Fernet.generate_key())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if another process made it first: then use theirs
        log.info("generated the secrets key in the data dir (mode 0600)")
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_bytes().strip()


def fernet(settings: Settings) -> Fernet:
    """The install's Fernet (one per key source, cached)."""
    given = settings.secrets_key.get_secret_value() if settings.secrets_key else ""
    cache_key = "env" if given else str(settings.data_dir.resolve())
    with _lock:
        found = _cache.get(cache_key)
        if found is not None and not given:
            return found
        try:
            box = Fernet(given.encode() if given else _file_key(settings.data_dir))
        except ValueError:
            raise InputError(
                "PHONE_SECRETS_KEY is not a Fernet key (32 url-safe base64-encoded bytes)"
            ) from None
        _cache[cache_key] = box
        return box


def encrypt(settings: Settings, plain: str) -> str:
    return fernet(settings).encrypt(plain.encode()).decode()


def decrypt(settings: Settings, token: str) -> str | None:
    """The plaintext, or None when the token was made with another key (or is damaged)."""
    if not token:
        return None
    try:
        return fernet(settings).decrypt(token.encode()).decode()
    except (InvalidToken, ValueError):
        return None
