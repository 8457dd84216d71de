"""Rendering helpers of the Privacy page (admin): the retention policy, purges, erasures,
and the notifications shown on a batch. Numbers and ids only: no personal data."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from phone_core import ui_batches
from ui import labels

KIND_LABELS = {"email": "Email", "linkedin": "LinkedIn profile", "phone": "Phone number"}
COUNT_LABELS = {
    "runs_files_deleted": "Runs whose files were deleted",
    "objects_deleted": "Files deleted",
    "runs_records_redacted": "Runs whose records were redacted",
    "records_redacted": "Records redacted",
    "persons_deleted": "People removed from person stores",
    "cache_entries_deleted": "Expired cache entries removed",
    "source_calls_deleted": "Old source measurements removed",
    "vendor_jobs_deleted": "Finished vendor jobs removed",
}


def days(value: int | None) -> str:
    return "kept (no limit)" if value is None else labels.count(value, "day")


def policy_frame(policy: Any) -> pd.DataFrame:
    outputs = days(policy.effective_outputs_days)
    if policy.outputs_days is None and policy.effective_outputs_days is not None:
        outputs += " (with the records)"
    return pd.DataFrame(
        [
            {"Data": "Run files (results, credits, enriched exports)", "Kept for": outputs},
            {"Data": "Run records: names, emails, phones", "Kept for": days(policy.records_days)},
            {"Data": "Person stores (people given by id)", "Kept for": days(policy.persons_days)},
            {"Data": "Found-phone cache", "Kept for": days(policy.cache_ttl_days or None)},
            {
                "Data": "Source measurements (no personal data)",
                "Kept for": days(policy.source_calls_days),
            },
        ]
    )


def purges_frame(purges: list[Any]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "As of (UTC)": labels.when(p.as_of),
                "Started by": {"schedule": "daily schedule"}.get(p.trigger, p.trigger),
                "Finished": "yes" if p.finished_at else "cut short (the next one completes it)",
                **{COUNT_LABELS[k]: p.counts.get(k, 0) for k in COUNT_LABELS},
            }
            for p in purges
        ]
    )


def receipt_text(receipt: dict[str, Any]) -> str:
    def n(key: str) -> int:
        value = receipt.get(key, 0)
        return len(value) if isinstance(value, list) else int(value)

    return (
        f"{labels.count(n('run_records_redacted'), 'run record')} redacted in "
        f"{labels.count(n('runs'), 'run')}; removed: "
        f"{labels.count(n('persons_deleted'), 'person store entry', 'person store entries')}, "
        f"{labels.count(n('cache_entries_deleted'), 'cache entry', 'cache entries')}, "
        f"{labels.count(n('directory_rows_deleted'), 'directory row')}; "
        f"{labels.count(n('objects_rewritten'), 'stored file')} rewritten."
    )


def erasures_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    out = []
    for r in rows:
        receipt = r.get("receipt") or {}
        done = r["state"] == "done"
        out.append(
            {
                "Requested (UTC)": labels.when(r["requested_at"]),
                "By": r["requested_by"],
                "Identified by": KIND_LABELS.get(r["kind"], r["kind"]),
                "State": "done" if done else "in progress",
                "What was touched": receipt_text(receipt) if done else "",
                "Erasure id": r["id"],
            }
        )
    return pd.DataFrame(out)


def deliveries(user: str, admin: bool, batch_id: str) -> None:
    """The batch's notifications and each delivery attempt (shown when there are any)."""
    found = ui_batches.batch_deliveries(user, batch_id, admin=admin)
    if not found:
        return
    rows = []
    for d in found:
        last = d.attempts[-1] if d.attempts else None
        rows.append(
            {
                "Event": d.event,
                "To": "the API request's webhook"
                if d.destination == "run_webhook"
                else "your webhook",
                "State": d.state,
                "Attempts": len(d.attempts),
                "Last answer": ""
                if last is None
                else (f"HTTP {last.status}" if last.status is not None else str(last.error)),
                "Next try (UTC)": labels.when(d.next_attempt_at) if d.next_attempt_at else "",
                "Delivered (UTC)": labels.when(d.delivered_at) if d.delivered_at else "",
            }
        )
    with st.expander(f"Notifications ({len(found)})"):
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="batch_deliveries")
        st.caption("Failed attempts are retried with growing waits for up to a day.")
