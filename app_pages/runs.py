"""Runs: your batches with live progress, credit use, results, downloads, cancel, re-run."""

from __future__ import annotations

import re
from collections.abc import Callable

import pandas as pd
import streamlit as st

from pages import _common as ui
from phone_core import ui_api
from phone_core.errors import PhoneError
from phone_core.models import OUTPUT_FILES, RecordOutcome, RecordStatus, Run

# Widget keys.
OWNER_FILTER = "runs_owner"
RUN_PICK = "runs_pick"
CANCEL = "runs_cancel"
ROW_FILTER = "runs_row_filter"
RERUN_CREDITS = "runs_rerun_credits"
RERUN = "runs_rerun"
DOWNLOAD_PREFIX = "runs_download_"
# Page state.
RERUN_FOR = "runs_rerun_for"  # run id the re-run budget default was set for

EVERYONE = "Everyone"
NO_SOURCE = "(none)"
OUTCOME_COLORS = {  # by the labels in ui.STATUS_LABELS
    "Found": "#2e7d32",
    "Already known (free)": "#66bb6a",
    "Duplicate (free)": "#a5d6a7",
    "Not found": "#9e9e9e",
    "Skipped (free)": "#cfd8dc",
    "Not processed": "#ffb300",
    "Error": "#d32f2f",
    "Waiting": "#90caf9",
}
REFRESH_SECONDS = 2.0
SMALL_COLUMNS = ("Rows",)
WITH_PHONE = (RecordStatus.FOUND, RecordStatus.CACHED, RecordStatus.DUPLICATE)
ROW_FILTERS = {
    "All rows": lambda o: True,
    "With a phone": lambda o: bool(_phone(o)),
    "Without a phone": lambda o: not _phone(o),
    "Not processed or error": lambda o: (
        o.status in (RecordStatus.NOT_PROCESSED, RecordStatus.ERROR, None)
    ),
}


def _phone(o: RecordOutcome) -> str:
    return o.phone if o.status in WITH_PHONE else ""


def _progress(run: Run) -> float:
    total = run.counts.total
    return 1.0 if total == 0 else min(1.0, run.counts.processed / total)


def _run_title(run: Run) -> str:
    name = run.label or "Untitled batch"
    return f"{name} · {ui.when(run.created_at)} · {ui.state_label(run.state.value)}"


def _runs_frame(runs: list[Run], admin: bool) -> pd.DataFrame:
    rows = []
    for run in runs:
        c = run.counts
        row: dict[str, object] = {
            "Created (UTC)": ui.when(run.created_at),
            "Batch": run.label or "Untitled batch",
        }
        if admin:
            row["Owner"] = run.owner
        row |= {
            "State": ui.state_label(run.state.value),
            "Progress": _progress(run),
            "Rows": c.total,
            "Phones found": c.with_phone,
            "Credits spent": run.credits_spent,
            "Max credits": run.max_credits,
            "Found rate": round(100 * c.found_rate),
            "Run id": run.run_id,
        }
        rows.append(row)
    return pd.DataFrame(rows)


def _runs_table(user: str, admin: bool, owner: str | None, was_active: bool) -> None:
    runs = ui_api.list_runs(user, admin=admin, owner=owner)
    st.dataframe(
        _runs_frame(runs, admin),
        hide_index=True,
        width="stretch",
        key="runs_table",
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


def _status(user: str, admin: bool, run_id: str, was_active: bool) -> None:
    run = ui_api.get_run(user, run_id, admin=admin)
    c = run.counts
    st.markdown(f"### {run.label or 'Untitled batch'}")
    st.caption(
        f"Run `{run.run_id}` · owner {run.owner} · created {ui.when(run.created_at)} UTC"
        + (f" · finished {ui.when(run.finished_at)} UTC" if run.finished_at else "")
        + (f" · re-run of `{run.parent_run_id}`" if run.parent_run_id else "")
    )
    st.progress(
        _progress(run),
        text=f"{ui.state_label(run.state.value)}: {c.processed:,} of {c.total:,} rows done",
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
        "Phones found",
        f"{c.with_phone:,}",
        help="People with a phone, found now or already known. Rows repeating a person "
        "get the same phone for free.",
    )
    cols[1].metric("Found rate", f"{100 * c.found_rate:.0f}%", help="Of the rows looked up.")
    cols[2].metric("Credits spent", f"{run.credits_spent:,} of {run.max_credits:,}")
    cols[3].metric("Not processed / errors", f"{c.not_processed:,} / {c.error:,}")
    if run.notice:
        st.warning(f"Note on this run: {run.notice}")
    if not run.state.finished:
        if not run.cancel_requested and st.button("Cancel this run", key=CANCEL):
            run = ui_api.cancel(user, run_id, admin=admin)
        if run.cancel_requested:
            st.info("Cancel requested: the run stops after the rows in progress.")
        st.caption("This updates by itself. Results and downloads appear when the run ends.")
    elif was_active:
        st.rerun()  # just finished: show results and downloads


def _live_table(user: str, admin: bool, owner: str | None, was_active: bool) -> None:
    ui.guarded("runs table", lambda: _runs_table(user, admin, owner, was_active))


def _live_status(user: str, admin: bool, run_id: str, was_active: bool) -> None:
    ui.guarded("run status", lambda: _status(user, admin, run_id, was_active))


def _outcomes_frame(items: list[RecordOutcome]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Row": o.idx + 1,
                "ID": o.person.id,
                "First name": o.person.first_name,
                "Last name": o.person.last_name,
                "Company": o.person.company_name,
                "Website": o.person.company_url,
                "LinkedIn": o.person.linkedin,
                "Phone": _phone(o),
                "Status": ui.STATUS_LABELS.get(o.status.value if o.status else "pending", ""),
                "Source": o.source,
                "Credits": o.credits_charged,
                "Detail": ui.detail_label(o.detail) if o.detail else "",
            }
            for o in items
        ]
    )


def _chart(items: list[RecordOutcome]) -> None:
    counts: dict[str, dict[str, int]] = {}
    for o in items:
        status = ui.STATUS_LABELS.get(o.status.value if o.status else "pending", "")
        per_source = counts.setdefault(o.source or NO_SOURCE, {})
        per_source[status] = per_source.get(status, 0) + 1
    outcomes = [label for label in OUTCOME_COLORS if any(label in c for c in counts.values())]
    wide = pd.DataFrame(
        [[counts[src].get(label, 0) for label in outcomes] for src in sorted(counts)],
        index=pd.Index(sorted(counts), name="Source"),
        columns=outcomes,
    )
    st.bar_chart(
        wide,
        color=[OUTCOME_COLORS[label] for label in outcomes],
        horizontal=True,
        height=90 + 45 * len(wide),
        x_label="Source",
        y_label="Rows",
    )
    st.caption(f"'{NO_SOURCE}': skipped rows, and rows no source had a phone for.")


def _fetcher(user: str, run_id: str, name: str, admin: bool) -> Callable[[], bytes]:
    def fetch() -> bytes:  # runs when the button is clicked, outside the script thread
        try:
            return ui_api.download(user, run_id, name, admin=admin)
        except PhoneError as exc:
            raise RuntimeError(ui.explain(exc)) from None
        except Exception as exc:
            ui.log_unexpected(f"download {name}", exc)
            raise RuntimeError("the file could not be read; see the server log") from None

    return fetch


def _downloads(user: str, run: Run, admin: bool) -> None:
    st.markdown("#### Downloads")
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", run.label.rsplit(".", 1)[0]).strip("-")[:60]
    stem = f"{stem or 'run'}-{run.run_id[:8]}"
    cols = st.columns(len(OUTPUT_FILES))
    for col, spec in zip(cols, OUTPUT_FILES.values(), strict=True):
        base, suffix = spec.name.rsplit(".", 1)
        col.download_button(
            spec.label,
            data=_fetcher(user, run.run_id, spec.name, admin),
            file_name=f"{stem}-{base}.{suffix}",
            mime=spec.mime,
            key=DOWNLOAD_PREFIX + spec.name,
            help=spec.description,
            on_click="ignore",
            icon=":material/download:",
        )


def _rerun(user: str, run: Run) -> None:
    if run.owner != user:
        return
    count = ui_api.rerunnable_count(user, run.run_id)
    if count == 0:
        return
    st.markdown("#### Re-run failed / not processed rows")
    worst = count * ui_api.per_record_worst_case()
    available = ui_api.credit_summary(user).available
    if st.session_state.get(RERUN_FOR) != run.run_id:
        st.session_state[RERUN_CREDITS] = max(1, min(worst, available))
        st.session_state[RERUN_FOR] = run.run_id
    st.caption(
        f"{count:,} rows ended in error or were not processed. A new run sends just those "
        f"rows (worst case {worst:,} credits; you have {available:,} available)."
    )
    left, right = st.columns([1, 2])
    budget = int(
        left.number_input("Maximum credits for the re-run", min_value=1, step=1, key=RERUN_CREDITS)
    )
    right.write("")
    if right.button(f"Re-run {count:,} rows", key=RERUN, disabled=available < 1):
        accepted = ui_api.rerun(user, run.run_id, budget)
        st.session_state[ui.FOCUS_RUN] = accepted.run_id
        st.rerun()
    if available < 1:
        st.caption("You have no credits available: ask an administrator for more.")


def _details(user: str, admin: bool, run: Run) -> None:
    items = ui_api.run_outcomes(user, run.run_id, admin=admin)
    st.markdown("#### Results")
    choice = st.selectbox("Show", list(ROW_FILTERS), key=ROW_FILTER)
    shown = [o for o in items if ROW_FILTERS[choice](o)]
    st.dataframe(
        _outcomes_frame(shown),
        hide_index=True,
        width="stretch",
        height=420,
        key="runs_results",
        column_config={
            "Row": st.column_config.NumberColumn("Row", format="%d", width="small"),
            "Phone": st.column_config.TextColumn("Phone", help="E.164 format"),
            "Credits": st.column_config.NumberColumn("Credits", format="%d", width="small"),
            "LinkedIn": st.column_config.TextColumn("LinkedIn", help="Profile slug"),
        },
    )
    st.caption(f"{len(shown):,} of {len(items):,} rows.")
    st.markdown("#### Outcomes by source")
    _chart(items)
    _downloads(user, run, admin)
    _rerun(user, run)


def main() -> None:
    user = ui.require_user()
    admin = ui.is_admin()
    st.title("Runs")
    owner: str | None = None
    runs = ui_api.list_runs(user, admin=admin)
    if admin:
        owners = {u.username for u in ui_api.list_users()} | {r.owner for r in runs}
        choice = st.selectbox("Show the runs of", [EVERYONE, *sorted(owners)], key=OWNER_FILTER)
        if choice != EVERYONE:
            owner = str(choice)
            runs = ui_api.list_runs(user, admin=admin, owner=owner)
    if not runs:
        st.info("No batches yet. Upload a lead list on the New batch page to start one.")
        st.page_link(ui.PAGE_NEW_BATCH, label="Start a new batch", icon=":material/upload_file:")
        return
    active = any(not r.state.finished for r in runs)
    st.caption(
        "Newest first." + (" Updates every few seconds while a run is active." if active else "")
    )
    live_table = st.fragment(run_every=REFRESH_SECONDS if active else None)(_live_table)
    live_table(user, admin, owner, active)

    by_id = {r.run_id: r for r in runs}
    focus = st.session_state.pop(ui.FOCUS_RUN, None)
    if focus in by_id:
        st.session_state[RUN_PICK] = focus
    run_id = st.selectbox(
        "Open a run",
        list(by_id),
        format_func=lambda rid: _run_title(by_id[rid]),
        key=RUN_PICK,
    )
    run = by_id[run_id]
    running = not run.state.finished
    live_status = st.fragment(run_every=REFRESH_SECONDS if running else None)(_live_status)
    live_status(user, admin, run_id, running)
    if run.state.finished:
        _details(user, admin, run)


ui.guarded("runs", main)
