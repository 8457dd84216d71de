"""What the web app pages call: thin functions over the engine, one connection each.

Pages import this module (and the plain data modules: models, tables, mapping, errors),
never SQLAlchemy, boto3 or httpx. Every function acting on runs takes the signed-in user;
``admin=True`` is passed only by pages that checked the admin role themselves. Nothing
here imports streamlit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from phone_core import credits, ingest, keys, preferences, service, users
from phone_core.bootstrap import get_runtime
from phone_core.credits import worst_case
from phone_core.keys import ApiKey
from phone_core.models import (
    BatchAccepted,
    CreditSummary,
    Preflight,
    RecordOutcome,
    Run,
    UsageRow,
)
from phone_core.runtime import Runtime
from phone_core.settings import Settings
from phone_core.sources import directory
from phone_core.tables import Table, read_table
from phone_core.users import UserInfo

# A generous bound on data rows per upload (the engine splits into runs of 1000 anyway);
# it keeps a mis-exported file from filling memory.
UPLOAD_MAX_ROWS = 200_000
BATCH_SCOPE = preferences.BATCH
DIRECTORY_SCOPE = preferences.DIRECTORY
DIRECTORY_MAX_ROWS = 2_000_000


def runtime() -> Runtime:
    return get_runtime()


def settings() -> Settings:
    return runtime().settings


# --- users (the credentials file) -------------------------------------------------------


def auth_file() -> Path:
    return users.auth_file(settings())


def auth_config() -> dict[str, Any]:
    return users.load_config(settings())


def ensure_admin() -> str | None:
    return users.ensure_admin(settings())


def list_users() -> list[UserInfo]:
    return users.list_users(settings())


def add_user(username: str, name: str, email: str, password: str, role: str) -> UserInfo:
    return users.add_user(settings(), username, name, email, password, role)


def reset_password(username: str) -> str:
    return users.reset_password(settings(), username)


# --- uploads and mappings ---------------------------------------------------------------


def read_upload(
    data: bytes, filename: str, *, max_rows: int = UPLOAD_MAX_ROWS, max_bytes: int | None = None
) -> Table:
    """An uploaded CSV/XLSX as a Table; FileFormatError carries the message to show."""
    limit = settings().upload_max_bytes if max_bytes is None else max_bytes
    return read_table(data, filename, max_rows=max_rows, max_bytes=limit)


def source_rows(table: Table) -> list[dict[str, str]]:
    """The original rows as header -> cell (kept for the enriched export)."""
    return ingest.source_rows(table)


def saved_mapping(
    user: str, headers: Sequence[str], scope: str = preferences.BATCH
) -> dict[str, str | None] | None:
    with runtime().db.connect() as conn:
        return preferences.load_mapping(conn, user, headers, scope)


def remember_mapping(
    user: str,
    headers: Sequence[str],
    mapping: Mapping[str, str | None],
    scope: str = preferences.BATCH,
) -> None:
    with runtime().db.begin() as conn:
        preferences.save_mapping(conn, user, headers, mapping, scope)


# --- batches and runs -------------------------------------------------------------------


def preflight(user: str, rows: Sequence[Mapping[str, str]]) -> Preflight:
    return service.preflight(runtime(), user, rows)


def submit(
    user: str,
    rows: Sequence[Mapping[str, str]],
    max_credits: int,
    *,
    source_rows: Sequence[dict[str, str]] | None = None,
    label: str = "",
) -> list[BatchAccepted]:
    return service.submit_upload(
        runtime(), user, rows, max_credits, source_rows=source_rows, label=label
    )


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


def grants(user: str | None = None, limit: int = 200) -> list[dict[str, object]]:
    with runtime().db.connect() as conn:
        return credits.grants(conn, user, limit)


# --- reference directory ----------------------------------------------------------------


def directory_stats() -> dict[str, object]:
    return directory.stats(runtime().db)


def load_directory(
    rows: Sequence[Mapping[str, str]], *, file_name: str, loaded_by: str
) -> tuple[int, int]:
    rt = runtime()
    return directory.load_rows(
        rt.db,
        rows,
        file_name=file_name,
        loaded_by=loaded_by,
        replace=True,
        default_region=rt.settings.default_region,
    )


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
