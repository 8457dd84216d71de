"""The Runs page's live parts: the runs table and one run's status panel."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from phone_core import ui_api
from phone_core.models import Run
from ui import common, labels

# Widget keys.
TABLE = "runs_table"
CANCEL = "runs_cancel"

SMALL_COLUMNS = ("Rows",)


def progress(run: Run) -> float:
    """Share of rows the run dealt with: a run stopped by its cap or a cancel shows the
    part it reached, not a full bar."""
    total = run.counts.total
    return 1.0 if total == 0 else min(1.0, run.counts.handled / total)


STOPPED_EARLY = {
    "credit_limit_reached": "The credit cap was reached",
    "cancelled": "The run was cancelled",
    "failed": "The run failed",
}


def progress_text(run: Run) -> str:
    c = run.counts
    text = f"{labels.state_label(run.state.value)}: {c.handled:,} of {c.total:,} rows done"
    if c.not_processed:
        text += f", {c.not_processed:,} not processed"
    return text


def run_title(run: Run) -> str:
    name = run.label or "Untitled batch"
    return f"{name} · {labels.when(run.created_at)} · {labels.state_label(run.state.value)}"


def runs_frame(runs: list[Run], admin: bool) -> pd.DataFrame:
    rows = []
    for run in runs:
        c = run.counts
        row: dict[str, object] = {
            "Created (UTC)": labels.when(run.created_at),
            "Batch": run.label or "Untitled batch",
        }
        if admin:
            row["Owner"] = run.owner
        row |= {
            "State": labels.state_label(run.state.value),
            "Progress": progress(run),
            "Rows": c.total,
            "Rows with a phone": c.rows_with_phone,
            "Credits spent": run.credits_spent,
            "Max credits": run.max_credits,
            "Found rate": round(100 * c.found_rate),
            "Run id": run.run_id,
        }
        rows.append(row)
    return pd.DataFrame(rows)


def runs_table(user: str, admin: bool, owner: str | None, was_active: bool) -> None:
    """The user's runs (everyone's, or ``owner``'s, for an admin); polled while active."""
    runs = ui_api.list_runs(user, admin=admin, owner=owner)
    st.dataframe(
        runs_frame(runs, admin),
        hide_index=True,
        width="stretch",
        key=TABLE,
        column_config={
            "Progress": st.column_config.ProgressColumn(
                "Progress", min_value=0.0, max_value=1.0, format="percent", width="small"
            ),
            "Found rate": st.column_config.NumberColumn("Found rate", format="%d%%"),
            "Credits spent": st.column_config.NumberColumn("Credits spent", format="%d"),
            "Max credits": st.column_config.NumberColumn("Max credits", format="%d"),
            **{name: st.column_config.NumberColumn(name, width="small") for name in SMALL_COLUMNS},
        },
    )
    if was_active and all(r.state.finished for r in runs):
        st.rerun()  # everything finished: redraw the page once, and stop polling


def status(user: str, admin: bool, run_id: str, was_active: bool) -> None:
    """One run's progress, counts and cancel button; polled while it runs."""
    run = ui_api.get_run(user, run_id, admin=admin)
    c = run.counts
    st.markdown(f"### {common.plain(run.label) if run.label else 'Untitled batch'}")
    st.caption(
        f"Run `{run.run_id}` · owner {common.plain(run.owner)}"
        + f" · created {labels.when(run.created_at)} UTC"
        + (f" · finished {labels.when(run.finished_at)} UTC" if run.finished_at else "")
        + (f" · re-run of `{run.parent_run_id}`" if run.parent_run_id else "")
    )
    st.progress(progress(run), text=progress_text(run))
    if run.state.value in STOPPED_EARLY and c.not_processed:
        st.warning(
            f"{STOPPED_EARLY[run.state.value]} before every row was processed: "
            f"{c.not_processed:,} rows were not processed and cost nothing. "
            "Re-run them below.",
            icon=":material/warning:",
        )
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
                ("Waiting", c.pending),
            )
        )
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
    cols[2].metric("Credits spent", f"{run.credits_spent:,} of {run.max_credits:,}")
    cols[3].metric("Not processed / errors", f"{c.not_processed:,} / {c.error:,}")
    if run.notice:
        st.warning(f"Note on this run: {common.plain(run.notice)}")
    if not run.state.finished:
        if not run.cancel_requested and st.button("Cancel this run", key=CANCEL):
            run = ui_api.cancel(user, run_id, admin=admin)
        if run.cancel_requested:
            st.info("Cancel requested: the run stops after the rows in progress.")
        st.caption("This updates by itself. Results and downloads appear when the run ends.")
    elif was_active:
        st.rerun()  # just finished: show results and downloads
