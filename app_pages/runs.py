"""Runs: your batches with live progress, credit use, results, downloads, cancel, re-run."""

from __future__ import annotations

import streamlit as st

from phone_core import ui_api
from ui import common, run_results, run_view

# Widget keys.
OWNER_FILTER = "runs_owner"
RUN_PICK = "runs_pick"

EVERYONE = "Everyone"
REFRESH_SECONDS = 2.0


def _live_table(user: str, admin: bool, owner: str | None, was_active: bool) -> None:
    common.guarded("runs table", lambda: run_view.runs_table(user, admin, owner, was_active))


def _live_status(user: str, admin: bool, run_id: str, was_active: bool) -> None:
    common.guarded("run status", lambda: run_view.status(user, admin, run_id, was_active))


def main() -> None:
    user = common.require_user()
    admin = common.is_admin()
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
        st.page_link(
            common.PAGE_NEW_BATCH, label="Start a new batch", icon=":material/upload_file:"
        )
        return
    active = any(not r.state.finished for r in runs)
    st.caption(
        "Newest first." + (" Updates every few seconds while a run is active." if active else "")
    )
    live_table = st.fragment(run_every=REFRESH_SECONDS if active else None)(_live_table)
    live_table(user, admin, owner, active)

    by_id = {r.run_id: r for r in runs}
    focus = st.session_state.pop(common.FOCUS_RUN, None)
    if focus in by_id:
        st.session_state[RUN_PICK] = focus
    run_id = st.selectbox(
        "Open a run",
        list(by_id),
        format_func=lambda rid: run_view.run_title(by_id[rid]),
        key=RUN_PICK,
    )
    run = by_id[run_id]
    running = not run.state.finished
    live_status = st.fragment(run_every=REFRESH_SECONDS if running else None)(_live_status)
    live_status(user, admin, run_id, running)
    if run.state.finished:
        run_results.details(user, admin, run)


common.guarded("runs", main)
