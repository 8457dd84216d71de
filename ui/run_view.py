"""The Runs page's list: one line per batch (an upload, its parts and re-runs together),
filtered by state, searched by name or id, by dates, paged in the DB (one page is read
per rerun, never the whole history); a row opens the batch."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pandas as pd
import streamlit as st

from phone_core import ui_batches
from phone_core.models import Batch
from phone_core.ui_batches import BatchQuery
from ui import labels

# Widget keys.
TABLE = "runs_table"
STATE_FILTER = "runs_state"
SEARCH = "runs_search"
DATES = "runs_dates"
PAGE = "runs_page_no"
# Page state.
SEEN_PICK = "runs_seen_pick"  # the table selection already acted on
# The opened batch lives in the URL (a reload keeps it).
QUERY_BATCH = "batch"

PAGE_SIZE = 25
SMALL_COLUMNS = ("Rows", "Parts")
STATE_FILTERS = {  # label -> ui_batches.BATCH_STATES
    "All states": "all",
    "In progress": "active",
    "Completed": "completed",
    "Stopped early": "stopped",
}


def progress(batch: Batch) -> float:
    """Share of the upload's rows dealt with: a batch stopped by its cap or a cancel
    shows the part it reached, not a full bar."""
    c = batch.counts
    return 1.0 if c.total == 0 else min(1.0, c.handled / c.total)


def progress_text(batch: Batch) -> str:
    c = batch.counts
    done = f"{c.handled:,} of {labels.count(c.total, 'row')} done"
    text = f"{labels.state_label(batch.state.value)}: {done}"
    if c.not_processed:
        text += f", {c.not_processed:,} not processed"
    return text


def name(batch: Batch) -> str:
    return batch.label or "Untitled batch"


def pages(n: int) -> int:
    return max(1, -(-n // PAGE_SIZE))


def batches_frame(batches: list[Batch], admin: bool) -> pd.DataFrame:
    rows = []
    for b in batches:
        c = b.counts
        row: dict[str, object] = {"Created (UTC)": labels.when(b.created_at), "Batch": name(b)}
        if admin:
            row["Owner"] = b.owner
        row |= {
            "State": labels.state_label(b.state.value),
            "Progress": progress(b),
            "Rows": c.total,
            "Rows with a phone": c.rows_with_phone,
            "Do-not-call": c.dnc_flagged + c.suppressed,
            "Credits spent": b.credits_spent,
            "Budget": b.budget,
            "Found rate": round(100 * c.found_rate),
            "Parts": len(b.parts),
            "Batch id": b.batch_id,
        }
        rows.append(row)
    return pd.DataFrame(rows)


def filters(owner: str | None) -> BatchQuery:
    """The state filter, the name search and the dates (outside the polled table)."""
    left, middle, right = st.columns([1, 2, 1])
    state = str(left.selectbox("State", list(STATE_FILTERS), key=STATE_FILTER))
    search = str(
        middle.text_input("Search", key=SEARCH, placeholder="File name or batch id")
    ).strip()
    dates = right.date_input("Created (UTC)", value=[], key=DATES, help="A day or a range.")
    picked = [d for d in (dates if isinstance(dates, tuple | list) else [dates]) if d]
    since = until = None
    if picked:
        since = datetime.combine(min(picked), time.min)
        until = datetime.combine(max(picked) + timedelta(days=1), time.min)
    return BatchQuery(owner, STATE_FILTERS.get(state, "all"), search, since, until)


def batches_table(user: str, admin: bool, query: BatchQuery, was_active: bool) -> None:
    """One page of the batches, read from the DB page by page; polled while one is
    active. Clicking a row opens it."""
    page = max(1, int(st.session_state.get(PAGE, 1) or 1))
    found = ui_batches.batch_page(user, query, page, PAGE_SIZE, admin=admin)
    n_pages = pages(found.total)
    if page > n_pages:  # fewer pages since (a filter): the last one
        page = n_pages
        st.session_state[PAGE] = page
        found = ui_batches.batch_page(user, query, page, PAGE_SIZE, admin=admin)
    rows = found.batches
    key = f"{query.state}_{query.search}_{query.since}_{query.until}_{page}"
    if not rows:
        st.info("No batch matches this filter.")
    else:
        event = st.dataframe(
            batches_frame(rows, admin),
            hide_index=True,
            width="stretch",
            key=f"{TABLE}_{key}",  # a new page or filter: a new selection
            on_select="rerun",
            selection_mode="single-row",
            column_config={
                "Progress": st.column_config.ProgressColumn(
                    "Progress", min_value=0.0, max_value=1.0, format="percent", width="small"
                ),
                "Found rate": st.column_config.NumberColumn("Found rate", format="%d%%"),
                "Credits spent": st.column_config.NumberColumn("Credits spent", format="%d"),
                "Budget": st.column_config.NumberColumn("Budget", format="%d"),
                **{c: st.column_config.NumberColumn(c, width="small") for c in SMALL_COLUMNS},
            },
        )
        _open_clicked(rows, list(getattr(getattr(event, "selection", None), "rows", []) or []))
    first = (page - 1) * PAGE_SIZE
    st.caption(
        f"Batches {first + 1 if rows else 0:,}–{first + len(rows):,} of {found.total:,}. "
        "Newest first. Click a row to open it."
        + (" Updates every few seconds while a batch is active." if was_active else "")
    )
    if n_pages > 1:
        st.number_input("Page", min_value=1, max_value=n_pages, step=1, key=PAGE)
    if was_active and not ui_batches.batch_overview(user, admin=admin, owner=query.owner).active:
        st.rerun(scope="app")  # everything finished: redraw the page once, stop polling


def _open_clicked(rows: list[Batch], selected: list[int]) -> None:
    """A newly clicked row opens its batch (a selection already acted on is left alone,
    so a refresh that moves the rows never opens another)."""
    picked = tuple(selected)
    if not picked or st.session_state.get(SEEN_PICK) == picked:
        st.session_state[SEEN_PICK] = picked
        return
    st.session_state[SEEN_PICK] = picked
    if picked[0] < len(rows):
        open_batch(rows[picked[0]].batch_id)
        st.rerun(scope="app")


def open_batch(batch_id: str) -> None:
    st.query_params[QUERY_BATCH] = batch_id


def opened() -> str | None:
    value = st.query_params.get(QUERY_BATCH)
    return str(value) if value else None
