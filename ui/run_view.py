"""The Runs page's list: one line per batch (an upload, its parts and re-runs together),
filtered by state, searched by name, paged; a row opens the batch."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

from phone_core import ui_api
from phone_core.models import Batch, RunState
from ui import labels

# Widget keys.
TABLE = "runs_table"
STATE_FILTER = "runs_state"
SEARCH = "runs_search"
PAGE = "runs_page_no"
# Page state.
SEEN_PICK = "runs_seen_pick"  # the table selection already acted on
# The opened batch lives in the URL (a reload keeps it).
QUERY_BATCH = "batch"

PAGE_SIZE = 25
SMALL_COLUMNS = ("Rows", "Parts")
STOPPED = (RunState.CREDIT_LIMIT_REACHED, RunState.CANCELLED, RunState.FAILED)
STATE_FILTERS: dict[str, Callable[[Batch], bool]] = {
    "All states": lambda b: True,
    "In progress": lambda b: not b.state.finished,
    "Completed": lambda b: b.state == RunState.COMPLETED,
    "Stopped early": lambda b: b.state in STOPPED,
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


def pick(batches: list[Batch], state: str, search: str) -> list[Batch]:
    """The batches the state filter and the name search let through."""
    wanted = search.strip().casefold()
    keep = STATE_FILTERS.get(state, STATE_FILTERS["All states"])
    return [b for b in batches if keep(b) and wanted in name(b).casefold()]


def page_of(items: list[Batch], page: int) -> list[Batch]:
    start = (max(1, page) - 1) * PAGE_SIZE
    return items[start : start + PAGE_SIZE]


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


def filters() -> tuple[str, str]:
    """The state filter and the name search (outside the polled table)."""
    left, right = st.columns([1, 2])
    state = str(left.selectbox("State", list(STATE_FILTERS), key=STATE_FILTER))
    search = str(right.text_input("Search by name", key=SEARCH, placeholder="Batch name"))
    return state, search


def batches_table(
    user: str, admin: bool, owner: str | None, was_active: bool, state: str, search: str
) -> None:
    """One page of the batches; polled while one is active. Clicking a row opens it."""
    everything = ui_api.list_batches(user, admin=admin, owner=owner)
    shown = pick(everything, state, search)
    n_pages = pages(len(shown))
    page = min(int(st.session_state.get(PAGE, 1) or 1), n_pages)
    if PAGE in st.session_state and st.session_state[PAGE] != page:
        st.session_state[PAGE] = page  # fewer pages since (a filter): the last one
    rows = page_of(shown, page)
    if not rows:
        st.info("No batch matches this filter.")
    else:
        event = st.dataframe(
            batches_frame(rows, admin),
            hide_index=True,
            width="stretch",
            key=f"{TABLE}_{state}_{search}_{page}",  # a new page or filter: a new selection
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
        f"Batches {first + 1 if rows else 0:,}–{first + len(rows):,} of {len(shown):,}. "
        "Newest first. Click a row to open it."
        + (" Updates every few seconds while a batch is active." if was_active else "")
    )
    if n_pages > 1:
        st.number_input("Page", min_value=1, max_value=n_pages, step=1, key=PAGE)
    if was_active and all(b.state.finished for b in everything):
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
