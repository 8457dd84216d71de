"""What the web app pages call: thin functions over the engine, one connection each.

Three modules by concern, every page importing the ones it needs: this one (the process
runtime and settings, signing in and the account, the user's own credits, keys and
notifications, who is acting), ``ui_batches`` (uploads, runs and batches) and
``ui_admin`` (the admin pages: users, everyone's credits and keys, privacy, compliance,
sources).

Pages (and ``ui/``) import these modules, plus types and constants of the plain modules
(models, tables, mapping, errors, ``ingest.ParsedFile``), never SQLAlchemy, boto3 or
httpx. Every function acting on runs takes the signed-in user; ``admin=True`` is passed
only by pages that checked the admin role themselves. Nothing here imports streamlit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from phone_core import (
    audit,
    credits,
    keys,
    notify,
    preferences,
    run_views,
    sessions,
    users,
    webhooks,
)
from phone_core.bootstrap import get_runtime
from phone_core.keys import ApiKey
from phone_core.models import (
    CreditSummary,
    UsageRow,
)
from phone_core.runtime import Runtime
from phone_core.sessions import Session
from phone_core.settings import Settings
from phone_core.users import UserInfo


def runtime() -> Runtime:
    return get_runtime()


def settings() -> Settings:
    return runtime().settings


# --- users and sessions (the registry in the state DB: phone_core.users, .sessions) ----


def state_db_url() -> str:
    return settings().state_db_url


def ensure_admin() -> str | None:
    return users.ensure_admin(runtime().db)


def sign_in(username: str, password: str, client: str | None = None) -> Session:
    """A new session, or sessions.SignInError (wrong password, locked out, disabled)."""
    return sessions.sign_in(runtime().db, settings(), username, password, client)


def login_credentials() -> dict[str, dict[str, Any]]:
    """Active users and their password hashes, for the sign-in form of ui.auth."""
    return sessions.login_credentials(runtime().db)


def session_cookie_key() -> str:
    """The install's random key that signs the sign-in cookie (shared by every process)."""
    return sessions.cookie_key(runtime().db).hex()


def session_hours() -> float:
    return settings().session_hours


def session_user(username: str, signed_in_at: float) -> UserInfo | None:
    """The user of a session that is still valid, read from the registry now."""
    return sessions.check(runtime().db, settings(), username, signed_in_at)


def session_cookie(username: str, signed_in_at: float) -> tuple[str, float]:
    """(signed cookie value, lifetime in seconds) for the browser to keep."""
    return sessions.issue_token(runtime().db, settings(), username, signed_in_at)


def session_from_cookie(token: str) -> Session | None:
    """The session a browser's cookie carries, when it is still valid."""
    claims = sessions.read_token(runtime().db, token)
    if claims is None:
        return None
    user = sessions.check(
        runtime().db, settings(), claims.username, claims.issued_at, claims.expires_at
    )
    return None if user is None else Session(user, claims.issued_at)


def sign_out(username: str) -> None:
    sessions.sign_out(runtime().db, username)


def change_password(username: str, current: str, new: str) -> float:
    """The signed-in user's own new password; returns the session's new sign-in time."""
    return sessions.change_password(runtime().db, settings(), username, current, new)


# --- the user's own credits ------------------------------------------------------------


def credit_summary(user: str) -> CreditSummary:
    with runtime().db.connect() as conn:
        return credits.summarize(conn, user)


def usage(
    user: str | None = None, start: datetime | None = None, end: datetime | None = None
) -> list[UsageRow]:
    with runtime().db.connect() as conn:
        return credits.usage(conn, user, start, end)


def run_names(run_ids: Sequence[str]) -> dict[str, tuple[str, datetime]]:
    """run id -> (batch name, created at), for the usage report."""
    with runtime().db.connect() as conn:
        return run_views.names(conn, run_ids)


# --- API keys ---------------------------------------------------------------------------


def create_key(user: str, label: str = "") -> tuple[ApiKey, str]:
    with runtime().db.begin() as conn:
        return keys.create(conn, user, label)


def list_keys(user: str) -> list[ApiKey]:
    with runtime().db.connect() as conn:
        return keys.list_keys(conn, user)


def revoke_key(user: str, key_id: str) -> None:
    with runtime().db.begin() as conn:
        keys.revoke(conn, user, key_id)


# --- notifications when a batch ends (phone_core.notify, .preferences, .webhooks) ---------


def webhook_url(user: str) -> str:
    """The user's webhook URL ("" when notifications are off)."""
    with runtime().db.connect() as conn:
        return preferences.notify_settings(conn, user).webhook_url


def has_notify_secret(user: str) -> bool:
    with runtime().db.connect() as conn:
        return bool(preferences.notify_settings(conn, user).secret)


def save_webhook(user: str, url: str) -> str | None:
    """Check and save the URL ("" turns notifications off); InputError says what is wrong.
    Returns the signing secret when one was made now (to show once)."""
    rt = runtime()
    checked = webhooks.check_url(url, rt.settings.allow_private_webhooks)
    with rt.db.begin() as conn:
        return preferences.set_webhook(conn, user, checked)


def regenerate_notify_secret(user: str) -> str:
    with runtime().db.begin() as conn:
        return preferences.new_notify_secret(conn, user)


def send_test_notification(user: str) -> tuple[bool, str]:
    """Send a test notification now: (delivered, what happened in words)."""
    rt = runtime()
    result = notify.send_test(rt, user)
    if result is None:
        return False, "Save a webhook address first."
    return result.ok, result.describe(rt.settings.notify_timeout_sec)


def recent_notifications(user: str, limit: int = 5) -> list[notify.Notification]:
    with runtime().db.connect() as conn:
        return notify.recent(conn, user, limit)


def activity_clock() -> datetime:
    """Now, as the engine stamps finished runs (naive UTC)."""
    return notify.clock()


def run_activity(user: str, since: datetime) -> notify.Activity:
    """The user's active-run progress and the batches that ended since ``since``."""
    with runtime().db.connect() as conn:
        return notify.activity(conn, user, since)


# --- compliance: who is acting, and how do-not-call numbers are shown --------------


def act_as(username: str | None, ip: str | None = None) -> None:
    """The signed-in user (and their address) every audited action of this rerun is
    recorded under; None: nobody (the sign-in form)."""
    if username:
        audit.set_actor(username, ip or "", "web")
    else:
        audit.clear_actor()


def dnc_mode() -> str:
    """``flag`` or ``withhold`` (PHONE_DNC_MODE)."""
    return settings().dnc_mode
