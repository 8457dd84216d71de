"""What the web app pages call: thin functions over the engine, one connection each.

Pages (and ``ui/``) import this module, plus types and constants of the plain modules
(models, tables, mapping, errors, ``ingest.ParsedFile``), never SQLAlchemy, boto3 or
httpx. Uploads go through ``ingest`` (the one pipeline): a page asks for the parsed file
and its pre-flight on every rerun and keeps none of it in its session.

Every function acting on runs takes the signed-in user; ``admin=True`` is passed only by
pages that checked the admin role themselves. Nothing here imports streamlit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, BinaryIO

from phone_core import (
    audit,
    batch_views,
    batches,
    credits,
    directory_upload,
    dnc,
    erasure,
    ingest,
    keys,
    notify,
    passwords,
    preferences,
    retention,
    run_views,
    service,
    sessions,
    source_check,
    source_report,
    suppression,
    users,
    vendor_config,
    webhooks,
)
from phone_core import mapping as mapping_rules
from phone_core.batch_views import BatchOverview, BatchPage
from phone_core.batch_views import BatchQuery as BatchQuery  # the Runs page's filter
from phone_core.bootstrap import get_runtime
from phone_core.credits import worst_case
from phone_core.ingest import ParsedFile, Purpose
from phone_core.keys import ApiKey
from phone_core.models import (
    Batch,
    BatchAccepted,
    ColumnRow,
    CreditSummary,
    Preflight,
    RecordOutcome,
    Run,
    UsageRow,
)
from phone_core.runtime import Runtime
from phone_core.sessions import Session
from phone_core.settings import Settings
from phone_core.sources import directory
from phone_core.users import UserInfo
from phone_core.vendor_config import VendorView as VendorView  # the Sources page's type

BATCH = ingest.BATCH  # what an upload is for: a batch of leads ...
DIRECTORY = ingest.DIRECTORY  # ... or the reference directory


def runtime() -> Runtime:
    return get_runtime()


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


def cache_source() -> str:
    """Where 'already known' phones come from, for the pre-flight."""
    s = settings()
    if s.cache_scope == "user":
        return f"Phones you found in the last {s.cache_ttl_days} days: free."
    return (
        f"Phones found in the last {s.cache_ttl_days} days by anyone in your organisation "
        "(paid for once, by whoever looked them up first): free for you."
    )


def settings() -> Settings:
    return runtime().settings


# --- users and sessions (the registry in the state DB: phone_core.users, .sessions) ----


def state_db_url() -> str:
    return settings().state_db_url


def ensure_admin() -> str | None:
    return users.ensure_admin(runtime().db)


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


def db_clock() -> float:
    """Now on the state DB's clock (the clock of every sign-in time)."""
    with runtime().db.connect() as conn:
        return sessions.db_clock(conn)


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


# --- uploads: read, map, check, pre-flight, submit (the pipeline is phone_core.ingest) ----


def read_upload(
    name: str,
    data: bytes | Callable[[], bytes] | BinaryIO,
    purpose: Purpose = BATCH,
    *,
    digest: str | None = None,
    sheet: str | None = None,
) -> ParsedFile:
    """An uploaded CSV/XLSX within the limits of the settings; FileFormatError says why not.
    ``sheet``: a workbook's sheet by name (default: the first holding a table).
    ``data``: the bytes, a callable giving them, or the uploaded file (a directory's is read
    a chunk at a time, its first rows only: ``ingest.read``)."""
    return ingest.read(name, data, settings(), purpose, digest=digest, sheet=sheet)


def initial_mapping(
    user: str, parsed: ParsedFile, purpose: Purpose = BATCH
) -> tuple[dict[str, str | None], bool]:
    """The user's last mapping for these headers, else the suggestion; True when recalled."""
    return ingest.initial_mapping(runtime(), user, parsed, purpose)


def mapping_problem(mapping: Mapping[str, str | None], purpose: Purpose = BATCH) -> str | None:
    return ingest.problem(mapping, purpose)


def can_enrich(mapping: Mapping[str, str | None]) -> bool:
    """Whether rows mapped this way can be enrichable at all (records.IDENTITY_GROUPS)."""
    return mapping_rules.can_enrich(mapping)


def mapping_warnings(parsed: ParsedFile, mapping: Mapping[str, str | None]) -> list[str]:
    return ingest.warnings(parsed.table, mapping)


def column_rows(parsed: ParsedFile, mapping: Mapping[str, str | None]) -> list[ColumnRow]:
    """One row per column of the file: samples, the field it is mapped to, how sure."""
    return ingest.column_rows(parsed, mapping)


def column_warnings(parsed: ParsedFile, mapping: Mapping[str, str | None]) -> list[str]:
    """``mapping_warnings`` without the reading notes (a page that shows its own sheet
    picker and header-row note)."""
    return mapping_rules.mapping_warnings(parsed.table, mapping)


def preflight(
    user: str,
    parsed: ParsedFile,
    mapping: dict[str, str | None],
    revision: str = "",
    sources: Sequence[str] | None = None,
) -> Preflight:
    return ingest.preflight(runtime(), user, parsed, mapping, revision, sources)


def budget_blocker(pf: Preflight) -> str:
    return ingest.budget_blocker(pf)


def is_free(pf: Preflight) -> bool:
    return ingest.is_free(pf)


def default_max_credits(pf: Preflight) -> int:
    return ingest.default_max_credits(pf)


def budget_advice(pf: Preflight, max_credits: int) -> tuple[str, str]:
    """(a warning that blocks the submit, a note that does not); either may be ''."""
    warning = ingest.over_budget(pf, max_credits)
    return warning, "" if warning else ingest.below_worst_case(pf, max_credits)


def submit_upload(
    user: str,
    parsed: ParsedFile,
    mapping: dict[str, str | None],
    max_credits: int,
    label: str,
    sources: Sequence[str] | None = None,
) -> list[BatchAccepted]:
    return ingest.submit_upload(runtime(), user, parsed, mapping, max_credits, label, sources)


def load_directory(
    user: str,
    parsed: ParsedFile,
    mapping: dict[str, str | None],
    source: BinaryIO | None = None,
    *,
    replace: bool = True,
    progress: Callable[[int, float], None] | None = None,
) -> tuple[int, int]:
    """Replace the reference directory with the mapped file (or add it: ``replace=False``),
    streamed from ``source`` (the uploaded file); (rows read, rows loaded). ``progress``
    is told the rows read and the share of the file read as it goes."""
    return directory_upload.load(
        runtime(), parsed, mapping, source, loaded_by=user, replace=replace, progress=progress
    )


def max_upload_mb(purpose: Purpose = BATCH) -> int:
    """The upload limit in Streamlit's MB (1,048,576 bytes, as every size shown here)."""
    return -(-purpose.limits(settings()).max_bytes // (1024 * 1024))


def per_record_worst_case() -> int:
    return worst_case(runtime().source_prices())


def pays_only_for_found() -> bool:
    """True when no source charges for a lookup that finds nothing (the default prices)."""
    return all(p.not_found_cost == 0 for p in runtime().source_prices())


def list_runs(user: str, *, admin: bool = False, owner: str | None = None) -> list[Run]:
    return service.list_runs(runtime(), user, admin=admin, owner=owner)


def get_run(user: str, run_id: str, *, admin: bool = False) -> Run:
    return service.get_run(runtime(), user, run_id, admin=admin)


def run_outcomes(user: str, run_id: str, *, admin: bool = False) -> list[RecordOutcome]:
    return service.run_outcomes(runtime(), user, run_id, admin=admin)


def cancel(user: str, run_id: str, *, admin: bool = False) -> Run:
    return service.cancel(runtime(), user, run_id, admin=admin)


def rerunnable_count(user: str, run_id: str) -> int:
    return service.rerunnable_count(runtime(), user, run_id)


def rerun(user: str, run_id: str, max_credits: int) -> BatchAccepted:
    return service.rerun(runtime(), user, run_id, max_credits)


def download(user: str, run_id: str, name: str, *, admin: bool = False) -> bytes:
    return service.download(runtime(), user, run_id, name, admin=admin)


# --- batches: an upload (its parts and re-runs) as one thing ---------------------------


def get_batch(user: str, batch_id: str, *, admin: bool = False) -> Batch:
    return batches.get_batch(runtime(), user, batch_id, admin=admin)


def batch_of_run(user: str, run_id: str, *, admin: bool = False) -> str:
    return batches.batch_of_run(runtime(), user, run_id, admin=admin)


# Server-side pages for the Runs page: it never reads every batch or every row (no
# function here returns a whole history: a page, a count or an aggregate).
BATCH_STATES = batch_views.BATCH_STATES
ROW_FILTERS = batch_views.ROW_FILTERS


def batch_page(
    user: str,
    query: BatchQuery,
    page: int,
    page_size: int,
    *,
    admin: bool = False,
) -> BatchPage:
    """Page ``page`` (from 1) of the batches ``query`` picks, newest first; a user sees
    only their own (an admin: ``query.owner``'s, or everyone's when it is None)."""
    scoped = (
        query if admin else BatchQuery(user, query.state, query.search, query.since, query.until)
    )
    with runtime().db.connect() as conn:
        return batch_views.batch_page(conn, scoped, page_size, (max(1, page) - 1) * page_size)


def batch_overview(user: str, *, admin: bool = False, owner: str | None = None) -> BatchOverview:
    """How many batches (active ones, the newest) the user (an admin: ``owner``, or
    everyone) has, from aggregates."""
    with runtime().db.connect() as conn:
        return batch_views.batch_overview(conn, owner if admin else user)


def batch_rows_page(
    user: str,
    batch_id: str,
    row_filter: str,
    page: int,
    page_size: int,
    *,
    admin: bool = False,
) -> tuple[list[RecordOutcome], int]:
    """Page ``page`` (from 1) of the batch's settled rows passing ``row_filter``
    (``ROW_FILTERS``), in upload order, and how many rows pass it."""
    with runtime().db.connect() as conn:
        rows = batch_views.batch_rows(conn, batch_id, None if admin else user)
        offset = (max(1, page) - 1) * page_size
        return batch_views.outcome_page(conn, rows, row_filter, page_size, offset)


def batch_source_tally(
    user: str, batch_id: str, *, admin: bool = False
) -> dict[tuple[str, str | None], int]:
    """(source, status) -> rows over the batch's rows (each row's newest outcome)."""
    with runtime().db.connect() as conn:
        rows = batch_views.batch_rows(conn, batch_id, None if admin else user)
        return batch_views.outcome_tally(conn, rows)


def cancel_batch(user: str, batch_id: str, *, admin: bool = False) -> Batch:
    return batches.cancel_batch(runtime(), user, batch_id, admin=admin)


def batch_rerunnable_count(user: str, batch_id: str) -> int:
    return batches.batch_rerunnable_count(runtime(), user, batch_id)


def rerun_batch(user: str, batch_id: str, max_credits: int) -> list[BatchAccepted]:
    return batches.rerun_batch(runtime(), user, batch_id, max_credits)


def download_batch(
    user: str, batch_id: str, name: str, version: int, *, admin: bool = False
) -> bytes:
    return batches.download_batch(runtime(), user, batch_id, name, version, admin=admin)


# --- credits ----------------------------------------------------------------------------


def credit_summary(user: str) -> CreditSummary:
    with runtime().db.connect() as conn:
        return credits.summarize(conn, user)


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


def usage(
    user: str | None = None, start: datetime | None = None, end: datetime | None = None
) -> list[UsageRow]:
    with runtime().db.connect() as conn:
        return credits.usage(conn, user, start, end)


def run_names(run_ids: Sequence[str]) -> dict[str, tuple[str, datetime]]:
    """run id -> (batch name, created at), for the usage report."""
    with runtime().db.connect() as conn:
        return run_views.names(conn, run_ids)


def grants(user: str | None = None, limit: int = 200) -> list[dict[str, object]]:
    with runtime().db.connect() as conn:
        return credits.grants(conn, user, limit)


# --- reference directory ----------------------------------------------------------------


def directory_stats() -> dict[str, object]:
    return directory.stats(runtime().db)


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


def list_all_keys() -> list[ApiKey]:
    """Every user's keys (admin)."""
    with runtime().db.connect() as conn:
        return keys.list_keys(conn)


def revoke_any_key(key_id: str) -> ApiKey:
    """An admin revokes anyone's key."""
    with runtime().db.begin() as conn:
        return keys.revoke_any(conn, key_id)


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


# --- privacy and run notifications (issue 13) ------------------------------------------------


def batch_deliveries(user: str, batch_id: str, *, admin: bool = False) -> list[notify.RunDelivery]:
    """The notifications about the batch's runs (their webhooks, the batch's), oldest first."""
    batch = get_batch(user, batch_id, admin=admin)  # NotFound unless theirs (or an admin)
    seen: dict[int, notify.RunDelivery] = {}
    with runtime().db.connect() as conn:
        for part in batch.parts:
            for d in notify.run_deliveries(conn, part.run.run_id):
                seen.setdefault(d.id, d)
    return sorted(seen.values(), key=lambda d: d.id)


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


# --- compliance: who is acting, suppression (do-not-call) lists, the audit log -----------


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


# --- sources (the admin Sources page; issue 12) -------------------------------------------


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


def batch_source_choices() -> list[str]:
    """What a batch may choose from: the current waterfall, in order (the default)."""
    return [s.name for s in runtime().current_sources()]


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
