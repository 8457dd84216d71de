"""Telling people a batch ended: the notification outbox and its delivery.

The only module that writes ``notifications``. When a run is final and it is the last
part of its batch, ``batch_finished`` (called by ``engine.finish_run``) adds one row per
destination: today the owner's webhook, when they set one on the Account page; the API's
per-batch callback URL can be another destination of the same outbox (``enqueue``). The
row's key (subject, destination) is unique, so finishing twice (a step re-run after a
crash) adds nothing, and a failure here is logged, never raised into the run.

Delivery is at least once, from the worker process: ``Notifier`` is a thread started
with the worker (``bootstrap``) and stopped with the runtime; it looks at the outbox
every ``notify_poll_sec`` and sends what is due (``deliver_due``). A row is claimed by a
conditional update that also counts the attempt and leases it, so several workers on
one database never send it at once, and a worker that dies mid-send leaves it to be sent
again once the lease ends. A failure is retried after ``notify_backoff_base_sec`` x4,
x16, ... until ``notify_max_attempts``; then the row is ``failed`` with the last HTTP
status or error type (never a message or a URL). The body is a Slack/Teams-compatible
``text`` plus structured fields: counts and credits, no phone numbers, no person data.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from phone_core import db, preferences, run_views, runs, webhooks
from phone_core.errors import redacted_trace
from phone_core.models import RunCounts, RunState
from phone_core.runtime import Runtime
from phone_core.settings import Settings

log = logging.getLogger(__name__)

BATCH_FINISHED = "batch.finished"
TEST_EVENT = "test"
USER_WEBHOOK = "user_webhook"  # the owner's webhook (Account page)
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
LEASE_MARGIN_SEC = 30.0  # a claimed row is due again this long after its timeout
_PART = re.compile(r" \(part \d+/\d+\)$")
# The state a batch of several parts ends in: the most telling of its parts'.
_STATE_RANK = (RunState.FAILED, RunState.CANCELLED, RunState.CREDIT_LIMIT_REACHED)
_HEADLINE = {
    RunState.COMPLETED: "finished",
    RunState.CREDIT_LIMIT_REACHED: "stopped at its credit limit",
    RunState.CANCELLED: "was cancelled",
    RunState.FAILED: "failed",
}
nt = db.notifications


@dataclass(frozen=True)
class BatchSummary:
    """A finished batch (one run, or every part of an upload), in numbers only."""

    batch_id: str  # the upload's group id, or the run id
    run_ids: list[str]
    owner: str
    label: str
    state: RunState
    counts: RunCounts
    credits_spent: int
    finished_at: datetime


def batch_summary(conn: Connection, run_id: str) -> BatchSummary | None:
    """The batch ``run_id`` ends, or None while it (or a later part of it) is not final."""
    row = runs.get(conn, run_id)
    parts = run_views.group_rows(conn, row.group_id) if row.group_id else [row]
    if not parts or not all(p.state.finished for p in parts):
        return None
    by_run = run_views.counts(conn, [p.run_id for p in parts])
    total = RunCounts()
    for c in by_run.values():
        for name, value in c.model_dump().items():
            setattr(total, name, getattr(total, name) + value)
    states = {p.state for p in parts}
    state = next((s for s in _STATE_RANK if s in states), RunState.COMPLETED)
    return BatchSummary(
        batch_id=row.group_id or row.run_id,
        run_ids=[p.run_id for p in parts],
        owner=row.owner,
        label=_PART.sub("", parts[0].label),
        state=state,
        counts=total,
        credits_spent=sum(p.spent for p in parts),
        finished_at=max(p.finished_at or p.created_at for p in parts),
    )


def _slack_escape(text: str) -> str:
    """Slack's three control characters (a label cannot turn into a link or mention)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def summary_text(s: BatchSummary, *, for_chat: bool = False) -> str:
    """``Batch 'leads.csv' finished: 812 of 1,000 rows have a phone, 640 credits spent.``"""
    label = s.label or "Untitled batch"
    name = _slack_escape(label) if for_chat else label
    total, phones = s.counts.total, s.counts.rows_with_phone
    rows = f"{phones:,} of {total:,} {'row has' if total == 1 else 'rows have'} a phone"
    spent = f"{s.credits_spent:,} {'credit' if s.credits_spent == 1 else 'credits'} spent"
    return f"Batch '{name}' {_HEADLINE.get(s.state, s.state.value)}: {rows}, {spent}."


def _iso(value: datetime) -> str:
    return value.replace(microsecond=0).isoformat() + "Z"


def payload(s: BatchSummary, settings: Settings) -> dict[str, Any]:
    """The body of a ``batch.finished`` notification (``delivery_id`` added when sent)."""
    link = f"{settings.app_url}/runs"
    c = s.counts
    return {
        "text": f"{summary_text(s, for_chat=True)} {link}",
        "event": BATCH_FINISHED,
        "run_id": s.run_ids[0],
        "run_ids": s.run_ids,
        "batch_id": s.batch_id,
        "label": s.label,
        "state": s.state.value,
        "counts": {
            "total": c.total,
            "rows_with_phone": c.rows_with_phone,
            "found": c.found,
            "not_found": c.not_found,
            "cached": c.cached,
            "duplicate": c.duplicate,
            "skipped": c.skipped,
            "not_processed": c.not_processed,
            "error": c.error,
        },
        "credits_spent": s.credits_spent,
        "finished_at": _iso(s.finished_at),
        "url": link,
    }


def enqueue(
    conn: Connection,
    *,
    subject: str,
    destination: str,
    owner: str,
    event: str,
    url: str,
    body: dict[str, Any],
) -> None:
    """Add a notification to the outbox, due now (a repeat of one subject and
    destination is a no-op)."""
    db.insert_ignore(
        conn,
        nt,
        {
            "subject": subject,
            "destination": destination,
            "owner": owner,
            "event": event,
            "url": url,
            "payload": body,
            "state": PENDING,
            "attempts": 0,
            "next_attempt_at": db.utcnow(),
            "created_at": db.utcnow(),
        },
    )


def batch_finished(rt: Runtime, run_id: str) -> None:
    """Queue the notifications of the batch ``run_id`` ends, if it ends one. Never raises:
    a run's end is never held up by its notification."""
    try:
        with rt.db.begin() as conn:
            summary = batch_summary(conn, run_id)
            if summary is None:
                return
            url = preferences.notify_settings(conn, summary.owner).webhook_url
            if url:
                enqueue(
                    conn,
                    subject=f"batch:{summary.batch_id}",
                    destination=USER_WEBHOOK,
                    owner=summary.owner,
                    event=BATCH_FINISHED,
                    url=url,
                    body=payload(summary, rt.settings),
                )
    except Exception as exc:
        log.error("run %s: notification not queued: %s", run_id, redacted_trace(exc))


# --- delivery ------------------------------------------------------------------------------


def _send(
    settings: Settings, url: str, secret: str, body: bytes, event: str, delivery: str
) -> webhooks.Delivery:
    headers = {
        webhooks.SIGNATURE_HEADER: webhooks.sign(secret, body),
        webhooks.EVENT_HEADER: event,
        webhooks.DELIVERY_HEADER: delivery,
    }
    return webhooks.post(
        url,
        body,
        headers,
        timeout=settings.notify_timeout_sec,
        allow_private=settings.allow_private_webhooks,
    )


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _claim(conn: Connection, row_id: int, attempts: int, lease_until: datetime) -> bool:
    done = conn.execute(
        sa.update(nt)
        .where(nt.c.id == row_id, nt.c.state == PENDING, nt.c.attempts == attempts)
        .values(attempts=attempts + 1, next_attempt_at=lease_until)
    )
    return done.rowcount == 1


def _settle(
    conn: Connection, row_id: int, attempts: int, result: webhooks.Delivery, settings: Settings
) -> None:
    now = db.utcnow()
    if result.ok:
        values: dict[str, Any] = {"state": DELIVERED, "delivered_at": now, "next_attempt_at": None}
    elif attempts >= settings.notify_max_attempts:
        values = {"state": FAILED, "next_attempt_at": None}
    else:
        wait = settings.notify_backoff_base_sec * 4 ** (attempts - 1)
        values = {"next_attempt_at": now + timedelta(seconds=wait)}
    values["last_error"] = None if result.ok else result.code[:50]
    conn.execute(sa.update(nt).where(nt.c.id == row_id).values(**values))


def deliver_one(rt: Runtime, row_id: int, attempts: int) -> bool | None:
    """Claim and send one due notification; None when another worker has it."""
    s = rt.settings
    lease = db.utcnow() + timedelta(seconds=s.notify_timeout_sec + LEASE_MARGIN_SEC)
    with rt.db.begin() as conn:
        if attempts >= s.notify_max_attempts:  # its last attempt died with its worker
            conn.execute(
                sa.update(nt)
                .where(nt.c.id == row_id, nt.c.state == PENDING, nt.c.attempts == attempts)
                .values(state=FAILED, next_attempt_at=None, last_error="interrupted")
            )
            return False
        if not _claim(conn, row_id, attempts, lease):
            return None
        row = conn.execute(sa.select(nt).where(nt.c.id == row_id)).one()._mapping
        secret = preferences.notify_settings(conn, str(row["owner"])).secret
    body = encode({**dict(row["payload"]), "delivery_id": str(row_id)})
    if secret:
        result = _send(s, str(row["url"]), secret, body, str(row["event"]), str(row_id))
    else:
        result = webhooks.Delivery(error="no_secret")
    with rt.db.begin() as conn:
        _settle(conn, row_id, attempts + 1, result, s)
    if result.ok:
        log.info("notification %s delivered (attempt %d)", row_id, attempts + 1)
    else:
        log.warning("notification %s attempt %d: %s", row_id, attempts + 1, result.code)
    return result.ok


def deliver_due(rt: Runtime, limit: int = 20) -> int:
    """Send the notifications that are due now; how many were tried."""
    with rt.db.connect() as conn:
        due = conn.execute(
            sa.select(nt.c.id, nt.c.attempts)
            .where(nt.c.state == PENDING, nt.c.next_attempt_at <= db.utcnow())
            .order_by(nt.c.next_attempt_at)
            .limit(limit)
        ).all()
    tried = 0
    for row_id, attempts in due:
        if deliver_one(rt, int(row_id), int(attempts)) is not None:
            tried += 1
    return tried


@dataclass(frozen=True)
class Notification:
    """One outbox row, as tests and pages read it."""

    id: int
    subject: str
    destination: str
    event: str
    state: str
    attempts: int
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime


def recent(conn: Connection, owner: str, limit: int = 5) -> list[Notification]:
    """The owner's latest notifications, newest first."""
    rows = conn.execute(
        sa.select(nt).where(nt.c.owner == owner).order_by(nt.c.id.desc()).limit(limit)
    )
    return [
        Notification(
            id=int(m["id"]),
            subject=str(m["subject"]),
            destination=str(m["destination"]),
            event=str(m["event"]),
            state=str(m["state"]),
            attempts=int(m["attempts"]),
            last_error=m["last_error"],
            delivered_at=m["delivered_at"],
            created_at=m["created_at"],
        )
        for m in (r._mapping for r in rows)
    ]


def send_test(rt: Runtime, user: str) -> webhooks.Delivery | None:
    """Send a signed test notification to the user's webhook now (not through the
    outbox: the result is shown at once); None when they have no webhook."""
    with rt.db.connect() as conn:
        prefs = preferences.notify_settings(conn, user)
    if not prefs.webhook_url:
        return None
    body = {
        "text": "Test notification from Phone enrichment: you will hear here when a batch "
        f"ends. {rt.settings.app_url}/runs",
        "event": TEST_EVENT,
        "delivery_id": "test",
    }
    return _send(rt.settings, prefs.webhook_url, prefs.secret, encode(body), TEST_EVENT, "test")


@dataclass(frozen=True)
class Activity:
    """What the web app tells a signed-in user on every page: progress of their active
    runs (the browser tab), and the batches that ended since ``since`` (toasts)."""

    active_runs: int
    rows_done: int
    rows_total: int
    ended: list[tuple[str, str]]  # (batch id, summary text), oldest first


def clock() -> datetime:
    """Now, as runs are stamped when they finish (naive UTC)."""
    return db.utcnow()


def activity(conn: Connection, owner: str, since: datetime) -> Activity:
    active, done, total = run_views.active_progress(conn, owner)
    ended: dict[str, str] = {}
    for run_id in run_views.finished_since(conn, owner, since):
        summary = batch_summary(conn, run_id)
        if summary is not None:
            ended[summary.batch_id] = summary_text(summary)
    return Activity(active, done, total, list(ended.items()))


class Notifier:
    """The worker's delivery loop, on a daemon thread; ``stop`` ends it between sends."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="phone-notifier", daemon=True)

    def start(self) -> Notifier:
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                busy = deliver_due(self.rt) > 0
            except Exception as exc:  # e.g. the database away for a moment: try again
                log.warning("notifications: %s", redacted_trace(exc))
                busy = False
            if not busy:
                self._stop.wait(self.rt.settings.notify_poll_sec)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
