"""Runs: your batches (an upload is one batch, whatever its size) with live progress,
credit use, the rows as they settle, downloads, cancel and re-run."""

from __future__ import annotations

import contextlib

import streamlit as st

from phone_core import ui_admin, ui_batches
from phone_core.errors import NotFound
from phone_core.models import Batch
from phone_core.ui_batches import BatchQuery
from ui import batch_panel, common, run_results, run_view

# Widget keys.
OWNER_FILTER = "runs_owner"

EVERYONE = "Everyone"
REFRESH_SECONDS = 2.0


def _live_table(user: str, admin: bool, query: BatchQuery, was_active: bool) -> None:
    common.guarded("runs table", lambda: run_view.batches_table(user, admin, query, was_active))


def _live_status(user: str, admin: bool, batch: Batch, was_active: bool) -> None:
    common.guarded("batch status", lambda: batch_panel.status(user, admin, batch, was_active))


def _focus(user: str, admin: bool) -> None:
    """After a submit, open the batch just created (in the URL: a reload keeps it)."""
    run_id = st.session_state.pop(common.FOCUS_RUN, None)
    if not run_id:
        return
    with contextlib.suppress(NotFound):  # not this user's: nothing opens
        run_view.open_batch(ui_batches.batch_of_run(user, str(run_id), admin=admin))


def _opened(user: str, admin: bool, owner: str | None, newest: str) -> Batch | None:
    """The batch in the URL (a reload keeps watching it), else the newest listed."""
    wanted = run_view.opened() or newest
    for batch_id in dict.fromkeys((wanted, newest)):
        with contextlib.suppress(NotFound):  # not this user's, or gone
            batch = ui_batches.get_batch(user, batch_id, admin=admin)
            if owner is None or batch.owner == owner:
                run_view.open_batch(batch.batch_id)
                return batch
    return None


def main() -> None:
    user = common.require_user()
    admin = common.is_admin()
    st.title("Runs")
    owner: str | None = None
    overview = ui_batches.batch_overview(user, admin=admin)  # aggregates: no batch is read
    if admin:
        owners = {u.username for u in ui_admin.list_users()} | set(overview.owners)
        choice = st.selectbox("Show the batches of", [EVERYONE, *sorted(owners)], key=OWNER_FILTER)
        if choice != EVERYONE:
            owner = str(choice)
            overview = ui_batches.batch_overview(user, admin=admin, owner=owner)
    if not overview.batches or overview.newest is None:
        st.info("No batches yet. Upload a lead list on the New batch page to start one.")
        st.page_link(
            common.PAGE_NEW_BATCH, label="Start a new batch", icon=":material/upload_file:"
        )
        return
    _focus(user, admin)
    active = overview.active > 0
    query = run_view.filters(owner)
    live_table = st.fragment(run_every=REFRESH_SECONDS if active else None)(_live_table)
    live_table(user, admin, query, active)

    batch = _opened(user, admin, owner, overview.newest)
    if batch is None:
        st.info("That batch is no longer there.")
        return
    running = not batch.state.finished
    live_status = st.fragment(run_every=REFRESH_SECONDS if running else None)(_live_status)
    live_status(user, admin, batch, running)
    if batch.state.finished:
        run_results.details(user, admin, batch)


common.guarded("runs", main)
