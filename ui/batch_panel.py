"""An opened batch, live: one progress bar, combined counts and credits, cancel, the
rows settled so far (filtered, paged), and its parts as details. Polled while it runs."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from phone_core import ui_batches
from phone_core.models import Batch, BatchPart
from ui import common, labels, privacy_view, run_results, run_view

# Widget keys.
CANCEL = "runs_cancel"
ROW_PAGE = "runs_results_page"

ROWS_PER_PAGE = 250  # rows of the results table read and sent per page (the table shows ~10)
STOPPED_EARLY = {
    "credit_limit_reached": "The credit cap was reached",
    "cancelled": "The batch was cancelled",
    "failed": "A run of the batch failed",
}


def part_state(part: BatchPart) -> str:
    """A part's state; a part queued behind another says which (not '0 of 0')."""
    if part.waiting_for is not None:
        return f"Waiting for part {part.waiting_for}"
    return labels.state_label(part.run.state.value)


def part_name(part: BatchPart) -> str:
    what = "Upload" if part.submission == 1 else f"Re-run {part.submission - 1}"
    return f"{what}, part {part.part} of {part.parts}" if part.parts > 1 else what


def parts_frame(batch: Batch) -> pd.DataFrame:
    """Each part's own state, rows and spend: the budget is the batch's, shown once."""
    return pd.DataFrame(
        [
            {
                "Part": part_name(p),
                "State": part_state(p),
                "Rows": p.run.counts.total,
                "Rows done": p.run.counts.handled,
                "Credits spent": p.run.credits_spent,
                "Run id": p.run.run_id,
            }
            for p in batch.parts
        ]
    )


def _counts(batch: Batch) -> None:
    c = batch.counts
    st.markdown(
        " · ".join(
            f"{label} **{n:,}**"
            for label, n in (
                ("Found", c.found),
                ("Already known", c.cached),
                ("Duplicates", c.duplicate),
                ("Not found", c.not_found),
                ("Skipped", c.skipped),
                ("Not processed", c.not_processed),
                ("Errors", c.error),
                ("Withheld (do-not-call)", c.suppressed),
                ("Waiting", c.pending),
            )
        )
    )
    if c.dnc_flagged:
        st.warning(
            f"{c.dnc_flagged:,} of the phones are on a do-not-call list: the enriched files "
            "mark them (dnc = true, dnc_list names the list). Do not call them."
        )
    cols = st.columns(4)
    cols[0].metric(
        "Phones found: people · rows",
        f"{c.with_phone:,} · {c.rows_with_phone:,}",
        help="People with a phone, found now or already known; rows repeating a person "
        "get the same phone for free, so more rows than people can have one (the rows "
        "with phone_found=true in results.csv).",
    )
    cols[1].metric(
        "Found rate",
        f"{100 * c.found_rate:.0f}%" if c.looked_up else "–",
        help=f"Of the {c.looked_up:,} distinct people looked up; duplicates, skipped and "
        "not processed rows do not count.",
    )
    cols[2].metric(
        "Credits spent",
        f"{batch.credits_spent:,} of {batch.budget:,}",
        help="The budget you set for the whole file (plus each re-run's), shared by its parts.",
    )
    cols[3].metric("Not processed / errors", f"{c.not_processed:,} / {c.error:,}")


def _results(user: str, admin: bool, batch: Batch) -> None:
    """The rows settled so far, in upload order, one page read from the DB at a time."""
    st.markdown("#### Results")
    choice = st.selectbox("Show", list(run_results.ROW_FILTERS), key=run_results.ROW_FILTER)
    row_filter = run_results.ROW_FILTERS.get(str(choice), "all")
    page = max(1, int(st.session_state.get(ROW_PAGE, 1) or 1))
    items, shown = ui_batches.batch_rows_page(
        user, batch.batch_id, row_filter, page, ROWS_PER_PAGE, admin=admin
    )
    n_pages = max(1, -(-shown // ROWS_PER_PAGE))
    if page > n_pages:  # fewer rows pass a new filter: its last page
        page = n_pages
        st.session_state[ROW_PAGE] = page
        items, shown = ui_batches.batch_rows_page(
            user, batch.batch_id, row_filter, page, ROWS_PER_PAGE, admin=admin
        )
    first = (page - 1) * ROWS_PER_PAGE
    run_results.results_table(items)
    caption = f"{shown:,} of {batch.counts.total:,} rows."
    if n_pages > 1:
        caption += f" Page {page} of {n_pages}: rows {first + 1:,}–{first + len(items):,} of these."
    if not batch.state.finished:
        caption += " Rows appear here as they are processed."
    st.caption(caption)
    if n_pages > 1:
        st.number_input("Results page", min_value=1, max_value=n_pages, step=1, key=ROW_PAGE)


def status(user: str, admin: bool, batch: Batch, was_active: bool) -> None:
    """The batch's progress, counts, rows so far and cancel; polled while it runs (a
    poll reads the batch's counts again: aggregates over its own runs only)."""
    batch_id = batch.batch_id
    if common.fragment_rerun():
        batch = ui_batches.get_batch(user, batch_id, admin=admin)
    c = batch.counts
    st.markdown(f"### {common.plain(run_view.name(batch))}")
    st.caption(
        f"Batch `{batch.batch_id}` · owner {common.plain(batch.owner)}"
        + f" · created {labels.when(batch.created_at)} UTC"
        + (f" · finished {labels.when(batch.finished_at)} UTC" if batch.finished_at else "")
        + f" · {labels.count(len(batch.parts), 'run')}"
    )
    st.progress(run_view.progress(batch), text=run_view.progress_text(batch))
    if batch.state.value in STOPPED_EARLY and c.not_processed:
        st.warning(
            f"{STOPPED_EARLY[batch.state.value]} before every row was processed: "
            f"{labels.count(c.not_processed, 'row')} "
            f"{'was' if c.not_processed == 1 else 'were'} not processed and cost nothing. "
            f"Re-run {'it' if c.not_processed == 1 else 'them'} below.",
            icon=":material/warning:",
        )
    _counts(batch)
    if batch.notice:
        st.warning(f"Note on this batch: {common.plain(batch.notice)}")
    if not batch.state.finished:
        if not batch.cancel_requested and st.button("Cancel this batch", key=CANCEL):
            batch = ui_batches.cancel_batch(user, batch_id, admin=admin)
        if batch.cancel_requested:
            st.info("Cancel requested: the batch stops after the rows in progress.")
        st.caption("This updates by itself. Downloads appear when the batch ends.")
    with st.expander(f"Parts and re-runs ({len(batch.parts)})"):
        st.dataframe(parts_frame(batch), hide_index=True, width="stretch")
    privacy_view.deliveries(user, admin, batch_id)  # webhook notifications and attempts
    _results(user, admin, batch)
    if was_active and batch.state.finished:
        st.rerun(scope="app")  # just finished: show downloads and the re-run
