"""What users read for the engine's codes: run states, record statuses, details, times."""

from __future__ import annotations

from datetime import datetime

from phone_core.records import ENRICHABLE_RULE

STATE_LABELS = {
    "queued": "Queued",
    "running": "Running",
    "completed": "Completed",
    "credit_limit_reached": "Stopped: credit limit reached",
    "cancelled": "Cancelled",
    "failed": "Failed",
}
STATUS_LABELS = {
    "found": "Found",
    "not_found": "Not found",
    "cached": "Already known (free)",
    "duplicate": "Duplicate (free)",
    "skipped": "Skipped (free)",
    "not_processed": "Not processed",
    "error": "Error",
    "suppressed": "Withheld: do-not-call (free)",
    "pending": "Waiting",
}
DETAIL_LABELS = {
    "missing_required_fields": f"missing fields: needs {ENRICHABLE_RULE}",
    "unknown_id": "unknown id",
    "credit_limit": "the credit cap was reached",
    "cancelled": "the batch was cancelled",
}


def count(n: int, word: str, plural: str = "") -> str:
    """``1 row``, ``2 rows``, ``1,000 credits``."""
    return f"{n:,} {word if n == 1 else plural or word + 's'}"


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


def state_label(state: str) -> str:
    return STATE_LABELS.get(state, state)


def status_label(status: str | None) -> str:
    """A record's status; None is a record not processed yet."""
    return STATUS_LABELS.get(status or "pending", "")


def detail_label(detail: str) -> str:
    return DETAIL_LABELS.get(detail, detail.replace("_", " "))
