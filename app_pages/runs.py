"""Runs: your batches (an upload is one batch, whatever its size) with live progress,
credit use, the rows as they settle, downloads, cancel and re-run."""

from __future__ import annotations

import contextlib

import streamlit as st

from phone_core import ui_api
from phone_core.errors import NotFound
from ui import batch_panel, common, run_results, run_view

# Widget keys.
OWNER_FILTER = "runs_owner"

EVERYONE = "Everyone"
REFRESH_SECONDS = 2.0


def _live_table(
    user: str, admin: bool, owner: str | None, was_active: bool, state: str, search: str
) -> None:
    common.guarded(
        "runs table",
        lambda: run_view.batches_table(user, admin, owner, was_active, state, search),
    )


def _live_status(user: str, admin: bool, batch_id: str, was_active: bool) -> None:
    common.guarded("batch status", lambda: batch_panel.status(user, admin, batch_id, was_active))


def _focus(user: str, admin: bool) -> None:
    """After a submit, open the batch just created (in the URL: a reload keeps it)."""
    run_id = st.session_state.pop(common.FOCUS_RUN, None)
    if not run_id:
        return
    with contextlib.suppress(NotFound):  # not this user's: nothing opens
        run_view.open_batch(ui_api.batch_of_run(user, str(run_id), admin=admin))


def main() -> None:
    user = common.require_user()
    admin = common.is_admin()
    st.title("Runs")
    owner: str | None = None
    batches = ui_api.list_batches(user, admin=admin)
    if admin:
        owners = {u.username for u in ui_api.list_users()} | {b.owner for b in batches}
        choice = st.selectbox("Show the batches of", [EVERYONE, *sorted(owners)], key=OWNER_FILTER)
        if choice != EVERYONE:
            owner = str(choice)
            batches = ui_api.list_batches(user, admin=admin, owner=owner)
    if not batches:
        st.info("No batches yet. Upload a lead list on the New batch page to start one.")
        st.page_link(
            common.PAGE_NEW_BATCH, label="Start a new batch", icon=":material/upload_file:"
        )
        return
    _focus(user, admin)
    active = any(not b.state.finished for b in batches)
    state, search = run_view.filters()
    live_table = st.fragment(run_every=REFRESH_SECONDS if active else None)(_live_table)
    live_table(user, admin, owner, active, state, search)

    batch_id = run_view.opened()
    if batch_id not in {b.batch_id for b in batches}:  # by default (or not listed): newest
        batch_id = batches[0].batch_id
    run_view.open_batch(batch_id)  # in the URL: a reload keeps watching this batch
    try:
        batch = ui_api.get_batch(user, batch_id, admin=admin)
    except NotFound:
        st.info("That batch is no longer there.")
        return
    running = not batch.state.finished
    live_status = st.fragment(run_every=REFRESH_SECONDS if running else None)(_live_status)
    live_status(user, admin, batch_id, running)
    if batch.state.finished:
        run_results.details(user, admin, batch)


common.guarded("runs", main)
