"""Telling people a batch ended: the notification outbox and its delivery.

The only module that writes ``notifications``. When a run is final and it is the last
part of its batch, ``batch_finished`` (called by ``engine.finish_run``) adds one row per
destination: the owner's webhook, when they set one on the Account page. A run submitted
through the API with a ``webhook_url`` (kept in ``run_webhooks``) also gets a
``run.finished`` row for that URL when it ends (``run_finished``). The
row's key (subject, destination) is unique, so finishing twice (a step re-run after a
crash) adds nothing, and a failure here is logged, never raised into the run.

Delivery is at least once, from the worker process: ``Notifier`` is a thread started
with the worker (``bootstrap``) and stopped with the runtime; it looks at the outbox
every ``notify_poll_sec`` and sends what is due (``deliver_due``). A row is claimed by a
conditional update that also counts the attempt and leases it, so several workers on
one database never send it at once, and a worker that dies mid-send leaves it to be sent
again once the lease ends. A failure is retried after ``notify_backoff_base_sec`` x4,
x16, ... (at most ``notify_backoff_max_sec`` apart) until ``notify_max_attempts`` or
``webhook_retry_hours`` after the event; then the row is ``failed`` with the last HTTP
status or error type (never a message or a URL). Every attempt is kept in
``notification_attempts`` and shown on the run (API and web app). Why an outbox and not a
DBOS workflow per notification: the outbox is as durable (rows in the state DB, leases
for a worker that dies), works the same in the in-process runtime, and lets any worker
send what is due; a workflow would add nothing but a second copy of the state. The body
is a Slack/Teams-compatible ``text`` plus structured fields: counts, credits and paths, no
phone numbers, no person data.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from phone_core import db, preferences, run_views, runs, webhooks
from phone_core.errors import InputError, redacted_trace
from phone_core.models import RunCounts, RunState
from phone_core.runtime import Runtime
from phone_core.settings import Settings

log = logging.getLogger(__name__)

BATCH_FINISHED = "batch.finished"
RUN_FINISHED = "run.finished"
TEST_EVENT = "test"
USER_WEBHOOK = "user_webhook"  # the owner's webhook (Account page)
RUN_WEBHOOK = "run_webhook"  # the ``webhook_url`` of one API request
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
na = db.notification_attempts
rw = db.run_webhooks


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
        "counts": _counts(c),
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


def _counts(c: RunCounts) -> dict[str, int]:
    return {
        "total": c.total,
        "rows_with_phone": c.rows_with_phone,
        "found": c.found,
        "not_found": c.not_found,
        "cached": c.cached,
        "duplicate": c.duplicate,
        "skipped": c.skipped,
        "not_processed": c.not_processed,
        "error": c.error,
    }


def run_payload(conn: Connection, run_id: str, settings: Settings) -> dict[str, Any] | None:
    """The body of a ``run.finished`` notification, or None while the run is not final."""
    row = runs.get(conn, run_id)
    if not row.state.finished:
        return None
    c = run_views.counts(conn, [run_id])[run_id]
    spent = f"{row.spent:,} {'credit' if row.spent == 1 else 'credits'} spent"
    return {
        "text": f"Run {run_id} {_HEADLINE.get(row.state, row.state.value)}: "
        f"{c.rows_with_phone:,} of {c.total:,} records have a phone, {spent}.",
        "event": RUN_FINISHED,
        "run_id": run_id,
        "state": row.state.value,
        "counts": _counts(c),
        "credits_spent": row.spent,
        "result_path": row.result_path,
        "credits_csv_path": row.credits_path,
        "finished_at": _iso(row.finished_at or row.created_at),
    }


def run_finished(rt: Runtime, run_id: str) -> None:
    """Queue the run's own webhook (``webhook_url`` of its API request) once the run is
    final. Called when the run finishes and again when the webhook is registered, so
    whichever comes second queues it (once: the outbox key is unique). Never raises."""
    try:
        with rt.db.begin() as conn:
            hook = conn.execute(
                sa.select(rw.c.url, rw.c.owner).where(rw.c.run_id == run_id)
            ).first()
            if hook is None:
                return
            body = run_payload(conn, run_id, rt.settings)
            if body is None:
                return
            enqueue(
                conn,
                subject=f"run:{run_id}",
                destination=RUN_WEBHOOK,
                owner=str(hook.owner),
                event=RUN_FINISHED,
                url=str(hook.url),
                body=body,
            )
    except Exception as exc:
        log.error("run %s: notification not queued: %s", run_id, redacted_trace(exc))


def check_run_webhook(rt: Runtime, user: str, url: str) -> None:
    """Refuse (``InputError``) a ``webhook_url`` that may not be called (SSRF rules of
    ``webhooks``) or that nothing could sign (the user has no signing secret yet)."""
    webhooks.check_url(url, rt.settings.allow_private_webhooks)
    with rt.db.connect() as conn:
        if not preferences.notify_settings(conn, user).secret:
            raise InputError(
                "webhook_url needs your signing secret to sign its notifications: make one "
                "in the web app (Account, Notifications: Make a signing secret) or with "
                "`phone-enrich webhook-secret USER`, then send the request again"
            )


def register_run_webhook(rt: Runtime, run_id: str, owner: str, url: str) -> None:
    """Remember where to POST when the run ends (the caller checked the URL)."""
    with rt.db.begin() as conn:
        db.insert_ignore(
            conn, rw, {"run_id": run_id, "owner": owner, "url": url, "created_at": db.utcnow()}
        )
    run_finished(rt, run_id)  # it may have ended already


@dataclass(frozen=True)
class Attempt:
    attempt: int
    at: datetime
    status: int | None
    error: str | None


@dataclass(frozen=True)
class RunDelivery:
    """A notification about a run (its own webhook, or its batch's), with its attempts."""

    id: int
    event: str
    destination: str
    state: str
    attempts: list[Attempt]
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime


def run_deliveries(conn: Connection, run_id: str) -> list[RunDelivery]:
    """The notifications about ``run_id`` (``run:<id>``, and ``batch:<its batch>`` when it
    ended the batch), oldest first, each with every attempt. Never the URL."""
    row = runs.get(conn, run_id)
    subjects = {f"run:{run_id}", f"batch:{row.group_id or row.run_id}"}
    found = conn.execute(sa.select(nt).where(nt.c.subject.in_(sorted(subjects))).order_by(nt.c.id))
    out: list[RunDelivery] = []
    for m in (r._mapping for r in found):
        if m["subject"].startswith("batch:") and run_id not in (m["payload"] or {}).get(
            "run_ids", []
        ):
            continue
        tries = conn.execute(
            sa.select(na).where(na.c.notification_id == m["id"]).order_by(na.c.attempt)
        )
        out.append(
            RunDelivery(
                id=int(m["id"]),
                event=str(m["event"]),
                destination=str(m["destination"]),
                state=str(m["state"]),
                attempts=[Attempt(int(t.attempt), t.at, t.status, t.error) for t in tries],
                next_attempt_at=m["next_attempt_at"] if m["state"] == PENDING else None,
                delivered_at=m["delivered_at"],
                created_at=m["created_at"],
            )
        )
    return out


# --- delivery ------------------------------------------------------------------------------


def _send(
    settings: Settings, url: str, secret: str, body: bytes, event: str, delivery: str
) -> webhooks.Delivery:
    headers = {
        **webhooks.signed_headers(secret, body, int(time.time())),
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


def backoff(settings: Settings, attempts: int) -> float:
    """Seconds to wait after failed attempt number ``attempts``: base x4 each time, capped."""
    wait = settings.notify_backoff_base_sec * 4 ** min(attempts - 1, 30)
    return float(min(wait, settings.notify_backoff_max_sec))


def _settle(
    conn: Connection,
    row_id: int,
    attempts: int,
    result: webhooks.Delivery,
    settings: Settings,
    created_at: datetime,
) -> None:
    """Record the attempt; delivered, or due again after the backoff while attempts and
    the retry window (``webhook_retry_hours`` from the event) last, else failed."""
    now = db.utcnow()
    window_ends = created_at + timedelta(hours=settings.webhook_retry_hours)
    if result.ok:
        values: dict[str, Any] = {"state": DELIVERED, "delivered_at": now, "next_attempt_at": None}
    elif attempts >= settings.notify_max_attempts:
        values = {"state": FAILED, "next_attempt_at": None}
    else:
        due = now + timedelta(seconds=backoff(settings, attempts))
        if due > window_ends:
            values = {"state": FAILED, "next_attempt_at": None}
        else:
            values = {"next_attempt_at": due}
    values["last_error"] = None if result.ok else result.code[:50]
    conn.execute(sa.update(nt).where(nt.c.id == row_id).values(**values))
    conn.execute(
        sa.insert(na).values(
            notification_id=row_id,
            attempt=attempts,
            at=now,
            status=result.status,
            error=None if result.status is not None else (result.error or "unknown")[:50],
        )
    )


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
        _settle(conn, row_id, attempts + 1, result, s, row["created_at"])
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
