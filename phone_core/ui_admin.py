"""What the admin pages call (``ui_api`` has the rest): users, every user's credits and
API keys, the reference directory, retention and erasure, do-not-call lists and the audit
log, and the vendor sources. Each page checks the admin role before it calls any of these.
Nothing here imports streamlit.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, BinaryIO

from phone_core import (
    audit,
    credits,
    dnc,
    erasure,
    keys,
    passwords,
    retention,
    source_check,
    source_report,
    suppression,
    users,
    vendor_config,
)
from phone_core.keys import ApiKey
from phone_core.models import CreditSummary
from phone_core.sources import directory
from phone_core.ui_api import runtime, settings
from phone_core.ui_batches import batch_source_choices
from phone_core.users import UserInfo
from phone_core.vendor_config import VendorView as VendorView  # the Sources page's type

# --- users (the registry in the state DB: phone_core.users) --------------------------------


def list_users(include_removed: bool = False) -> list[UserInfo]:
    with runtime().db.connect() as conn:
        return users.list_users(conn, include_removed=include_removed)


def add_user(username: str, name: str, email: str, password: str, role: str) -> UserInfo:
    hashed = passwords.hash_password(password)  # slow: before the transaction
    with runtime().db.begin() as conn:
        return users.add(conn, username, name, email, role, password_hash=hashed)


def reset_password(username: str, *, by: str | None = None) -> str:
    """A new random password for ``username`` (shown once); ``by`` may not reset their own."""
    return users.reset_password(runtime().db, username, by=by)


def set_role(username: str, role: str, *, by: str) -> UserInfo:
    with runtime().db.begin() as conn:
        return users.set_role(conn, username, role, by=by)


def disable_user(username: str, *, by: str) -> UserInfo:
    with runtime().db.begin() as conn:
        return users.disable(conn, username, by=by)


def enable_user(username: str) -> UserInfo:
    with runtime().db.begin() as conn:
        return users.enable(conn, username)


def remove_user(username: str, *, by: str) -> UserInfo:
    with runtime().db.begin() as conn:
        return users.remove(conn, username, by=by)


# --- credits and API keys of every user ----------------------------------------------------


def cache_policy() -> str:
    """Who gets found phones for free, in words (the admin Credits page)."""
    s = settings()
    days = f"{s.cache_ttl_days} days"
    if s.cache_scope == "user":
        return (
            f"Phone cache: per user (PHONE_CACHE_SCOPE=user). A phone a user found is free "
            f"for that user for {days}; other users pay for the same person again."
        )
    return (
        f"Phone cache: shared by the organisation (PHONE_CACHE_SCOPE=organisation). A phone "
        f"anyone found is free for every user for {days}, so nobody pays twice for one "
        "person; a pre-flight counts those phones as already known."
    )


def credit_summaries(usernames: Sequence[str] = ()) -> list[CreditSummary]:
    """Every account, plus the given users that have none yet (all zero)."""
    with runtime().db.connect() as conn:
        found = {s.user: s for s in credits.all_summaries(conn)}
        for name in usernames:
            if name not in found:
                found[name] = credits.summarize(conn, name)
    return [found[name] for name in sorted(found)]


def grant_credits(user: str, amount: int, note: str = "", *, by: str = "") -> CreditSummary:
    with runtime().db.begin() as conn:
        credits.grant(conn, user, amount, note=note, by=by)
        return credits.summarize(conn, user)


def set_monthly_limit(user: str, limit: int | None) -> CreditSummary:
    with runtime().db.begin() as conn:
        credits.set_monthly_limit(conn, user, limit)
        return credits.summarize(conn, user)


def grants(user: str | None = None, limit: int = 200) -> list[dict[str, object]]:
    with runtime().db.connect() as conn:
        return credits.grants(conn, user, limit)


def list_all_keys() -> list[ApiKey]:
    """Every user's keys (admin)."""
    with runtime().db.connect() as conn:
        return keys.list_keys(conn)


def revoke_any_key(key_id: str) -> ApiKey:
    """An admin revokes anyone's key."""
    with runtime().db.begin() as conn:
        return keys.revoke_any(conn, key_id)


# --- reference directory -------------------------------------------------------------------


def directory_stats() -> dict[str, object]:
    return directory.stats(runtime().db)


# --- privacy: retention and erasure --------------------------------------------------------


def retention_overview() -> dict[str, Any]:
    """The policy, its schedule and the last purges (newest first), for the admin page."""
    rt = runtime()
    with rt.db.connect() as conn:
        purges = retention.last_purges(conn, 5)
    return {
        "policy": retention.Policy.of(rt.settings),
        "schedule": rt.settings.retention_cron,
        "purges": purges,
    }


def purge_now(actor: str) -> dict[str, int]:
    """Apply the retention policy now (the admin's button)."""
    return retention.purge(runtime(), trigger="admin", actor=actor)


def erase_person(
    actor: str, kind: str, value: str, wait_sec: float = 60.0
) -> tuple[str, dict[str, Any]]:
    """Start an erasure and wait a while for it: (state, receipt so far). InputError when
    the identifier is not valid. Durable: if the wait ends first it completes on the worker."""
    rt = runtime()
    erasure_id = erasure.start(rt, kind, value, actor)
    deadline = time.monotonic() + wait_sec
    while True:
        with rt.db.connect() as conn:
            state, receipt = erasure.status(conn, erasure_id)
        if state == erasure.DONE or time.monotonic() > deadline:
            return state, {"erasure_id": erasure_id, **receipt}
        time.sleep(0.2)


def recent_erasures(limit: int = 20) -> list[dict[str, Any]]:
    """The latest erasures (receipts and states; no identifiers), newest first."""
    with runtime().db.connect() as conn:
        return erasure.recent(conn, limit)


# --- compliance: suppression (do-not-call) lists, the audit log ----------------------------


def suppression_lists() -> list[suppression.ListInfo]:
    with runtime().db.connect() as conn:
        return suppression.lists(conn)


def load_suppression(
    source: BinaryIO, filename: str, name: str | None, *, loaded_by: str
) -> suppression.ListInfo:
    """Load (or replace, by name) a do-not-call list from an uploaded CSV/XLSX, streamed."""
    rt = runtime()
    return suppression.load_file(
        rt.db, rt.settings, source, filename, name=name or None, loaded_by=loaded_by
    )


def remove_suppression(name: str) -> suppression.ListInfo:
    with runtime().db.begin() as conn:
        return suppression.remove(conn, name)


def recheck_past_runs() -> dnc.RecheckReport:
    """Mark past runs' stored spreadsheet files by the lists as they are now (``dnc``)."""
    return dnc.recheck_past_runs(runtime())


def audit_entries(
    *,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 500,
) -> list[audit.Entry]:
    with runtime().db.connect() as conn:
        return audit.query(conn, actor=actor, action=action, since=since, until=until, limit=limit)


def audit_actors() -> list[str]:
    with runtime().db.connect() as conn:
        return audit.actors(conn)


def audit_csv(entries: list[audit.Entry], filters: Mapping[str, str]) -> bytes:
    """The entries as CSV; the export itself is recorded (with its filters)."""
    audit.record(
        runtime().db,
        action=audit.AUDIT_EXPORT,
        detail={"rows": len(entries), **{k: v for k, v in filters.items() if v}},
    )
    return audit.to_csv(entries)


# --- sources (the Sources page) ------------------------------------------------------------


def source_views() -> list[VendorView]:
    """Every vendor adapter as configured (never a key: only whether one is set)."""
    with runtime().db.connect() as conn:
        return vendor_config.views(conn, settings())


def save_source(name: str, *, by: str, **values: Any) -> None:
    with runtime().db.begin() as conn:
        vendor_config.save(conn, settings(), name, by=by, **values)
    _refresh_sources()


def set_source_order(names: Sequence[str], *, by: str) -> None:
    with runtime().db.begin() as conn:
        vendor_config.set_order(conn, names, by=by)
    _refresh_sources()


def apply_suggested_order(*, by: str) -> list[str]:
    order = source_report.apply_suggested(runtime().db, settings(), by=by)
    _refresh_sources()
    return order


def _refresh_sources() -> None:
    """This process's waterfall now (workers follow within ``sources_refresh_sec``)."""
    reg = runtime().registry
    if reg is not None:
        reg.refresh(force=True)
        runtime().current_sources()


def test_source(name: str) -> tuple[bool, str]:
    return source_check.test_connection(settings(), runtime().db, name)


def sources_report(start: date | None, end: date | None) -> dict[str, Any]:
    begin, stop = source_report.period(start, end)
    return source_report.report(runtime().db, settings(), begin, stop)


def waterfall_order_from_env() -> bool:
    """True when PHONE_WATERFALL fixes which sources run and their order."""
    return "waterfall" in settings().model_fields_set


def directory_line() -> str:
    """The reference directory's place in the waterfall, in words (the Sources page)."""
    s = settings()
    if vendor_config.DIRECTORY not in batch_source_choices():
        return "Reference directory: not used (PHONE_WATERFALL leaves it out)."
    return (
        f"Reference directory: in the waterfall (before the vendors unless PHONE_WATERFALL "
        f"says otherwise), at {s.directory_lookup_cost} "
        f"credits per lookup and {s.directory_found_cost} per phone found "
        "(PHONE_DIRECTORY_LOOKUP_COST / PHONE_DIRECTORY_FOUND_COST)."
    )
