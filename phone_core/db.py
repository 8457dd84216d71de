"""State database: SQLAlchemy 2 tables, engine set-up, and the Alembic upgrade on open.

SQLite (a file under the data dir) by default, PostgreSQL by URL: same tables, same code.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from phone_core.models import (
    ID_MAX_LEN,
    IDENTITY_MAX_LEN,
    PERSON_FIELDS,
    PERSON_TEXT_MAX_LEN,
    RUN_ID_MAX_LEN,
)

metadata = sa.MetaData()


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("user", sa.String(200), primary_key=True),
    sa.Column("monthly_limit", sa.Integer, nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False, default=utcnow),
)

# Append-only. kind='grant' (amount may be negative for a correction) or 'charge'
# (one row per (run, record) at most: the unique index makes charges idempotent).
ledger = sa.Table(
    "ledger",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user", sa.String(200), nullable=False, index=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("amount", sa.Integer, nullable=False),
    sa.Column("run_id", sa.String(RUN_ID_MAX_LEN), nullable=True, index=True),
    sa.Column("record_idx", sa.Integer, nullable=True),
    sa.Column("source", sa.String(50), nullable=False, default=""),
    sa.Column("note", sa.String(500), nullable=False, default=""),
    sa.Column("created_at", sa.DateTime, nullable=False, default=utcnow, index=True),
    sa.UniqueConstraint("run_id", "record_idx", name="uq_ledger_run_record"),
    sa.Index("ix_ledger_user_kind", "user", "kind", "created_at", "amount"),  # 0011
)


def _person_columns() -> list[sa.Column[Any]]:
    """The person fields but the id, as stored in ``persons`` and ``run_records``."""
    return [
        sa.Column(name, sa.String(PERSON_TEXT_MAX_LEN), nullable=False, default="")
        for name in PERSON_FIELDS[1:]
    ]


persons = sa.Table(
    "persons",
    metadata,
    sa.Column("owner", sa.String(200), primary_key=True),
    sa.Column("id", sa.String(ID_MAX_LEN), primary_key=True),
    *_person_columns(),
    sa.Column("updated_at", sa.DateTime, nullable=False, default=utcnow),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(RUN_ID_MAX_LEN), primary_key=True),
    sa.Column("owner", sa.String(200), nullable=False, index=True),
    sa.Column("state", sa.String(30), nullable=False, index=True),
    sa.Column("max_credits", sa.Integer, nullable=False),
    sa.Column("spent", sa.Integer, nullable=False, default=0),
    sa.Column("total", sa.Integer, nullable=False),
    sa.Column("worst_case", sa.Integer, nullable=False),
    sa.Column("result_path", sa.String(1000), nullable=False),
    sa.Column("credits_path", sa.String(1000), nullable=False),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, default=False),
    sa.Column("notice", sa.String(1000), nullable=False, default=""),
    sa.Column("disabled_sources", sa.JSON, nullable=True),
    sa.Column("label", sa.String(500), nullable=False, default=""),
    sa.Column("parent_run_id", sa.String(RUN_ID_MAX_LEN), nullable=True),
    sa.Column("group_id", sa.String(64), nullable=True, index=True),
    sa.Column("group_seq", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", sa.DateTime, nullable=False, default=utcnow, index=True),
    sa.Column("started_at", sa.DateTime, nullable=True),
    sa.Column("finished_at", sa.DateTime, nullable=True),
    # The uploaded CSV's delimiter, for the Excel-friendly export; NULL: XLSX or API.
    sa.Column("source_delimiter", sa.String(1), nullable=True),
    # The batch (one upload, its parts and its re-runs) the run belongs to (0004_batches).
    sa.Column("batch_id", sa.String(RUN_ID_MAX_LEN), nullable=True, index=True),
    # Retention (0010_retention_erasure): when the run's stored files were deleted and
    # when its records' personal fields were redacted under the retention policy.
    sa.Column("outputs_deleted_at", sa.DateTime, nullable=True),
    sa.Column("records_redacted_at", sa.DateTime, nullable=True),
    # The sources the batch chose (JSON list of names, 0008_vendor_config); NULL: the
    # admin's waterfall at the time each wave starts.
    sa.Column("sources", sa.JSON, nullable=True),
)

run_records = sa.Table(
    "run_records",
    metadata,
    sa.Column("run_id", sa.String(RUN_ID_MAX_LEN), primary_key=True),
    sa.Column("idx", sa.Integer, primary_key=True),
    sa.Column("person_id", sa.String(ID_MAX_LEN), nullable=False),
    *_person_columns(),
    sa.Column("identity", sa.String(IDENTITY_MAX_LEN), nullable=False, default=""),
    sa.Column("dup_of", sa.Integer, nullable=True),
    sa.Column("known", sa.Boolean, nullable=False, default=True),
    sa.Column("status", sa.String(20), nullable=True),
    sa.Column("source", sa.String(50), nullable=False, default=""),
    sa.Column("phone", sa.String(40), nullable=False, default=""),
    sa.Column("credits", sa.Integer, nullable=False, default=0),
    sa.Column("detail", sa.String(200), nullable=False, default=""),
    sa.Column("source_row", sa.JSON, nullable=True),
    # The row's position in its batch's upload (0-based), across parts and re-runs.
    sa.Column("batch_row", sa.Integer, nullable=True),
    # The suppression (do-not-call) lists the row's phone or person is on, ";"-joined
    # (0009_suppression_audit): set when the outcome is settled, or by a re-check.
    sa.Column("dnc_list", sa.String(200), nullable=False, server_default=""),
    sa.Index("ix_run_records_status", "run_id", "status"),
    sa.Index("ix_run_records_batch_row", "run_id", "batch_row"),  # 0011_page_indexes
)

cache = sa.Table(
    "cache",
    metadata,
    sa.Column("identity", sa.String(IDENTITY_MAX_LEN), primary_key=True),
    sa.Column("phone", sa.String(40), nullable=False),
    sa.Column("source", sa.String(50), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False, default=utcnow),
    sa.Column("line_type", sa.String(20), nullable=False, server_default=""),  # 0007
    sa.Column("verified_at", sa.DateTime, nullable=True),  # 0007; the TTL counts from it
)

# An async vendor job (submit, then poll), checkpointed before waiting so that a restarted
# worker polls the same job instead of paying for a new one (phone_core.sources.vendor_jobs).
vendor_jobs = sa.Table(
    "vendor_jobs",
    metadata,
    sa.Column("job_key", sa.String(64), primary_key=True),
    sa.Column("source", sa.String(50), nullable=False),
    sa.Column("run_id", sa.String(RUN_ID_MAX_LEN + 8), nullable=False),
    sa.Column("vendor_job_id", sa.String(200), nullable=True),
    sa.Column("state", sa.String(20), nullable=False),  # submitting/submitted/done/failed
    sa.Column("detail", sa.String(50), nullable=False, server_default=""),
    sa.Column("records", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False, default=utcnow),
    sa.Column("updated_at", sa.DateTime, nullable=False, default=utcnow),
)

# Which job a record of a run went into at a vendor: (source, run, record) -> job.
vendor_job_records = sa.Table(
    "vendor_job_records",
    metadata,
    sa.Column("source", sa.String(50), primary_key=True),
    sa.Column("run_id", sa.String(RUN_ID_MAX_LEN + 8), primary_key=True),
    sa.Column("record_id", sa.String(64), primary_key=True),
    sa.Column("job_key", sa.String(64), nullable=False, index=True),
)

directory = sa.Table(
    "directory",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("linkedin", sa.String(500), nullable=False, default="", index=True),
    sa.Column("email", sa.String(500), nullable=False, default="", index=True),
    sa.Column("name_key", sa.String(1000), nullable=False, default=""),
    sa.Column("domain", sa.String(500), nullable=False, default=""),
    sa.Column("company_key", sa.String(500), nullable=False, default=""),
    sa.Column("phone", sa.String(40), nullable=False),
    # The row's identity (``records.identity_key``: linkedin, else email, else first + last
    # name with domain, else with company): what ``--append`` replaces rows by.
    sa.Column("identity", sa.String(IDENTITY_MAX_LEN), nullable=False, default=""),
    sa.Column("load_id", sa.Integer, nullable=True),  # the directory_loads row it came from
    sa.Index("ix_directory_name_domain", "name_key", "domain"),
    sa.Index("ix_directory_name_company", "name_key", "company_key"),
    sa.Index("ix_directory_identity", "identity"),
)

directory_loads = sa.Table(
    "directory_loads",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("file_name", sa.String(500), nullable=False),
    sa.Column("rows_read", sa.Integer, nullable=False),
    sa.Column("rows_loaded", sa.Integer, nullable=False),
    sa.Column("loaded_by", sa.String(200), nullable=False),
    sa.Column("replaced", sa.Boolean, nullable=False),
    sa.Column("loaded_at", sa.DateTime, nullable=False, default=utcnow),
    # An append: rows of earlier loads that had the identity of a row of this file.
    sa.Column("rows_replaced", sa.Integer, nullable=False, default=0),
    sa.Column("seconds", sa.Float, nullable=False, default=0.0),  # how long the load took
)

# The user registry: who may sign in to the web app and own API keys, credits and runs.
# Only ``phone_core.users`` writes it. A removed user stays as a tombstone (``removed_at``)
# so its runs and ledger keep their owner; the username is never given out again.
# ``sessions_valid_after`` (epoch seconds on the database clock): web sessions signed in
# before it are over (sign-out, password change or reset, disable, role change, removal).
users = sa.Table(
    "users",
    metadata,
    sa.Column("username", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, default=""),
    sa.Column("email", sa.String(200), nullable=False, default=""),
    sa.Column("role", sa.String(20), nullable=False, default="user"),
    sa.Column("password_hash", sa.String(100), nullable=False, default=""),  # "": none
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("removed_at", sa.DateTime, nullable=True),
    sa.Column("sessions_valid_after", sa.Float, nullable=False, default=0.0),
    sa.Column("created_at", sa.DateTime, nullable=False, default=utcnow),
    sa.Column("updated_at", sa.DateTime, nullable=False, default=utcnow),
)

# Random secrets of this install shared by every process on the state DB (the key that
# signs web-app session cookies). Only ``phone_core.sessions`` writes it.
install_secrets = sa.Table(
    "install_secrets",
    metadata,
    sa.Column("name", sa.String(50), primary_key=True),
    sa.Column("value", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False, default=utcnow),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("user", sa.String(200), nullable=False, index=True),
    sa.Column("label", sa.String(200), nullable=False, default=""),
    sa.Column("secret_hash", sa.String(128), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False, default=utcnow),
    sa.Column("last_used_at", sa.DateTime, nullable=True),
    sa.Column("revoked_at", sa.DateTime, nullable=True),
)

idempotency = sa.Table(
    "idempotency",
    metadata,
    sa.Column("user", sa.String(200), primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("body_hash", sa.String(64), nullable=False),
    sa.Column("response", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False, default=utcnow),
)

saved_mappings = sa.Table(
    "saved_mappings",
    metadata,
    sa.Column("user", sa.String(200), primary_key=True),
    sa.Column("header_sig", sa.String(64), primary_key=True),
    sa.Column("mapping", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False, default=utcnow),
)

# One row per rate-limited resource: the earliest time (epoch seconds) the next request
# may go out. Shared by every run and worker process that uses this state DB.
rate_limits = sa.Table(
    "rate_limits",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("next_at", sa.Float, nullable=False),
)


# Where each user wants to hear that a batch ended (a webhook URL) and the secret their
# notifications are signed with. Only ``phone_core.preferences`` writes it.
notify_settings = sa.Table(
    "notify_settings",
    metadata,
    sa.Column("user", sa.String(200), primary_key=True),
    sa.Column("webhook_url", sa.String(2000), nullable=False, default=""),
    sa.Column("secret", sa.String(100), nullable=False, default=""),
    sa.Column("updated_at", sa.DateTime, nullable=False, default=utcnow),
)

# The notification outbox: one row per (finished run or batch, destination), delivered
# at least once by the worker's notifier with retries. Only ``phone_core.notify`` writes it.
# ``state``: pending, delivered or failed (attempts used up); ``last_error`` is an HTTP
# status or an error type, never a message.
notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("subject", sa.String(100), nullable=False),  # e.g. batch:<batch id>
    sa.Column("destination", sa.String(50), nullable=False),  # e.g. user_webhook
    sa.Column("owner", sa.String(200), nullable=False, index=True),
    sa.Column("event", sa.String(50), nullable=False),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.DateTime, nullable=True),
    sa.Column("last_error", sa.String(50), nullable=True),
    sa.Column("delivered_at", sa.DateTime, nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False, default=utcnow),
    sa.UniqueConstraint("subject", "destination", name="uq_notifications_subject_destination"),
    sa.Index("ix_notifications_due", "state", "next_attempt_at"),
)

# Suppression (do-not-call) lists loaded by admins (0009_suppression_audit). Only
# ``phone_core.suppression`` writes them. An entry is a normalised value of one kind:
# ``ph`` (E.164 phone), ``em`` (email), ``li`` (LinkedIn slug); matched exactly.
suppression_lists = sa.Table(
    "suppression_lists",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("phones", sa.Integer, nullable=False, default=0),
    sa.Column("people", sa.Integer, nullable=False, default=0),
    sa.Column("rows_read", sa.Integer, nullable=False, default=0),
    sa.Column("rows_refused", sa.Integer, nullable=False, default=0),
    sa.Column("loaded_by", sa.String(200), nullable=False, default=""),
    sa.Column("loaded_at", sa.DateTime, nullable=False, default=utcnow),
)
suppression_entries = sa.Table(
    "suppression_entries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("list_id", sa.Integer, nullable=False, index=True),
    sa.Column("kind", sa.String(2), nullable=False),
    sa.Column("value", sa.String(PERSON_TEXT_MAX_LEN), nullable=False),
    sa.Index("ix_suppression_entries_match", "kind", "value"),
)

# The audit log: append-only (only ``phone_core.audit`` writes it, and only inserts).
# Who (``actor``: a username, ``cli:<os user>`` or ``system``), what (``action``, its
# ``target`` and a small ``detail``), when (``at``, UTC) and from where (``ip``, ``via``).
# Never secrets or personal data (no emails, phones, passwords, file contents).
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime, nullable=False, default=utcnow, index=True),
    sa.Column("actor", sa.String(200), nullable=False, index=True),
    sa.Column("action", sa.String(50), nullable=False, index=True),
    sa.Column("target", sa.String(200), nullable=False, default=""),
    sa.Column("detail", sa.JSON, nullable=False),
    sa.Column("ip", sa.String(64), nullable=False, default=""),
    sa.Column("via", sa.String(20), nullable=False, default=""),
)


# Retention purges (0010_retention_erasure): when one ran, under which policy, what it
# removed (counts only). Only ``phone_core.retention`` writes it.
purges = sa.Table(
    "purges",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("trigger", sa.String(20), nullable=False),  # schedule, admin, cli
    sa.Column("as_of", sa.DateTime, nullable=False),  # the clock the policy was applied at
    sa.Column("policy", sa.JSON, nullable=False),
    sa.Column("counts", sa.JSON, nullable=False),
    sa.Column("started_at", sa.DateTime, nullable=False, default=utcnow),
    sa.Column("finished_at", sa.DateTime, nullable=True),
)

# Erasure requests (right to be forgotten; 0010_retention_erasure). The identifier is kept
# in ``subject`` only while the erasure runs (the durable workflow's input is the id) and
# blanked when it is done; ``subject_hash`` stays for the record. ``plan``: what the first
# step found to erase (blanked when done); ``receipt``: counts, run ids, object keys.
# Only ``phone_core.erasure`` writes it.
erasures = sa.Table(
    "erasures",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("kind", sa.String(20), nullable=False),  # email, linkedin, phone
    sa.Column("subject", sa.String(600), nullable=False, default=""),
    sa.Column("subject_hash", sa.String(64), nullable=False, index=True),
    sa.Column("requested_by", sa.String(200), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),  # pending, running, done
    sa.Column("plan", sa.JSON, nullable=True),
    sa.Column("receipt", sa.JSON, nullable=True),
    sa.Column("requested_at", sa.DateTime, nullable=False, default=utcnow),
    sa.Column("finished_at", sa.DateTime, nullable=True),
)

# A run's own completion webhook (``webhook_url`` of ``POST /v1/agents/phone``;
# 0010_retention_erasure). Only ``phone_core.notify`` writes it.
run_webhooks = sa.Table(
    "run_webhooks",
    metadata,
    sa.Column("run_id", sa.String(RUN_ID_MAX_LEN), primary_key=True),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False, default=utcnow),
)

# Every delivery attempt of a notification (status or error type, never a message), shown
# on the run. Only ``phone_core.notify`` writes it.
notification_attempts = sa.Table(
    "notification_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("notification_id", sa.Integer, nullable=False, index=True),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("at", sa.DateTime, nullable=False, default=utcnow),
    sa.Column("status", sa.Integer, nullable=True),
    sa.Column("error", sa.String(50), nullable=True),
)


# Each vendor adapter as the admin configured it on the Sources page (issue 12). Only
# ``phone_core.vendor_config`` writes it. ``api_key`` is a Fernet token (never the key);
# NULL columns mean "the adapter's default". The environment wins over every column.
vendor_settings = sa.Table(
    "vendor_settings",
    metadata,
    sa.Column("name", sa.String(50), primary_key=True),
    sa.Column("enabled", sa.Boolean, nullable=False, default=False),
    sa.Column("position", sa.Integer, nullable=False, default=0),
    sa.Column("lookup_cost", sa.Integer, nullable=True),
    sa.Column("found_cost", sa.Integer, nullable=True),
    sa.Column("failed_cost", sa.Integer, nullable=True),
    sa.Column("rate_per_sec", sa.Float, nullable=True),
    sa.Column("concurrency", sa.Integer, nullable=True),
    sa.Column("base_url", sa.String(500), nullable=False, default=""),
    sa.Column("api_key", sa.Text, nullable=False, default=""),
    sa.Column("key_set_at", sa.DateTime, nullable=True),
    sa.Column("updated_by", sa.String(200), nullable=False, default=""),
    sa.Column("updated_at", sa.DateTime, nullable=False, default=utcnow),
)

# One row per record a source was asked about (issue 12): what it answered, what it cost,
# how long it took. Only ``phone_core.source_stats`` writes it. ``run_id`` NULL: a
# single-record call (``POST /v1/enrich/phone``). No personal data here.
source_calls = sa.Table(
    "source_calls",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(50), nullable=False),
    sa.Column("run_id", sa.String(RUN_ID_MAX_LEN), nullable=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("detail", sa.String(200), nullable=False, default=""),
    sa.Column("credits", sa.Integer, nullable=False, default=0),
    sa.Column("latency_ms", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", sa.DateTime, nullable=False, default=utcnow),
    sa.Index("ix_source_calls_source_time", "source", "created_at"),
    sa.Index("ix_source_calls_time", "created_at"),
)


def insert_ignore(conn: Connection, table: sa.Table, values: Any) -> None:
    """INSERT ... ON CONFLICT DO NOTHING on SQLite and PostgreSQL alike."""
    stmt: Any
    if conn.dialect.name == "sqlite":
        stmt = sqlite.insert(table).values(values).on_conflict_do_nothing()
    elif conn.dialect.name == "postgresql":
        stmt = postgresql.insert(table).values(values).on_conflict_do_nothing()
    else:
        raise ValueError(f"unsupported dialect {conn.dialect.name}")
    conn.execute(stmt)


COPY_UPSERT_MIN_ROWS = 200


def bulk_insert(
    conn: Connection,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    upsert_on: Sequence[str] = (),
) -> None:
    """Many rows of plain values (str, int, bool, None, datetime; JSON columns already
    dumped to str) in one DBAPI ``executemany``, skipping SQLAlchemy's per-row parameter
    processing, which dominates a 1000-row insert. With ``upsert_on`` (the primary key), a
    row whose key exists updates the other columns instead (same SQL on SQLite and
    PostgreSQL)."""
    if not rows:
        return
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    quote = conn.dialect.identifier_preparer.quote
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
        f"VALUES ({', '.join([mark] * len(columns))})"
    )
    if upsert_on:
        updates = [c for c in columns if c not in upsert_on]
        sql += f" ON CONFLICT ({', '.join(quote(c) for c in upsert_on)}) DO UPDATE SET " + (
            ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in updates)
        )
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        if not upsert_on:
            _copy_rows(conn, table.name, columns, rows)
            return
        if len(rows) >= COPY_UPSERT_MIN_ROWS:  # fewer: a temporary table costs more
            _copy_upsert(conn, table, columns, rows, upsert_on)
            return
    values = list(map(tuple, rows))
    stamps = [i for i, c in enumerate(columns) if isinstance(table.c[c].type, sa.DateTime)]
    if stamps and conn.dialect.name == "sqlite":  # stored as SQLAlchemy's SQLite text form
        texts: dict[Any, Any] = {}  # rows often share one timestamp: format it once

        def text_of(value: Any) -> Any:
            if value not in texts:
                texts[value] = _sqlite_time(value)
            return texts[value]

        values = [
            tuple(text_of(v) if i in stamps else v for i, v in enumerate(row)) for row in values
        ]
    conn.exec_driver_sql(sql, values)


def _copy_rows(
    conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """PostgreSQL: the rows in one ``COPY ... FROM STDIN`` on the connection's transaction
    (a 1000-row insert in a few ms of client CPU, where ``executemany`` sends 1000
    statements through psycopg's pipeline)."""
    quote = conn.dialect.identifier_preparer.quote
    sql = f"COPY {quote(table)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cur, cur.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)


def _copy_upsert(
    conn: Connection,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    upsert_on: Sequence[str],
) -> None:
    """PostgreSQL upsert: COPY into a temporary table (dropped at once), then one
    ``INSERT ... SELECT ... ON CONFLICT DO UPDATE``. A key given twice keeps its last row,
    as the statement-per-row form did."""
    keys = [columns.index(c) for c in upsert_on]
    latest = {tuple(row[i] for i in keys): row for row in rows}
    quote = conn.dialect.identifier_preparer.quote
    temp = f"_bulk_{table.name}"
    cols = ", ".join(quote(c) for c in columns)
    updates = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in columns if c not in upsert_on)
    key_cols = ", ".join(quote(c) for c in upsert_on)
    # The columns' types, none of the constraints; on an error the transaction rolls the
    # table back with everything else.
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {quote(temp)} AS SELECT {cols} FROM {quote(table.name)} "
        "WITH NO DATA"
    )
    _copy_rows(conn, temp, columns, list(latest.values()))
    conn.exec_driver_sql(  # in key order: concurrent upserts lock rows in one order
        f"INSERT INTO {quote(table.name)} ({cols}) SELECT {cols} FROM {quote(temp)} "
        f"ORDER BY {key_cols} ON CONFLICT ({key_cols}) DO UPDATE SET {updates}"
    )
    conn.exec_driver_sql(f"DROP TABLE {quote(temp)}")


def _sqlite_time(value: Any) -> Any:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(value, datetime) else value


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


_MIGRATE_LOCK = threading.Lock()
_MIGRATED: set[str] = set()
# The newest migration in migrations/versions (a test checks it against Alembic's head):
# a database already there skips Alembic altogether, which short commands feel.
SCHEMA_HEAD = "0011_page_indexes"


def _at_head(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            found = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    except sa.exc.DBAPIError:  # a new database: no version table yet
        return False
    return [tuple(r) for r in found] == [(SCHEMA_HEAD,)]


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (idempotent, once per process).
    Alembic is imported only when there is something to do (it costs short commands)."""
    key = str(engine.url)
    with _MIGRATE_LOCK:
        if key in _MIGRATED:
            return
        if _at_head(engine):
            _MIGRATED.add(key)
            return
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        _MIGRATED.add(key)
