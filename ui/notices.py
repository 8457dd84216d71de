"""Told when it ends, on every page: a toast when one of your batches ends while you are
signed in, and the browser tab's title showing the progress of your active runs.

``watch`` is called by app.py on every rerun. The session remembers when it started
(only batches that end after that are announced) and which batches it has announced.
While a run of yours is active, a small fragment polls every few seconds, so the toast
and the tab title follow along on any page without a click; the title is changed with
``st.set_page_config``, which Streamlit allows at any time (also in a fragment rerun).
"""

from __future__ import annotations

from datetime import datetime

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from phone_core import ui_api
from ui import common

APP_TITLE = "Phone enrichment"
REFRESH_SECONDS = 5.0
MAX_REMEMBERED = 200  # batch ids kept per session (older ones ended long ago)

# Session state (UI state only: plain values).
SINCE = "notices_since"  # when this session started watching (ISO, engine clock, UTC)
ANNOUNCED = "notices_announced"  # ids of the batches already announced by a toast


def tab_title(active_runs: int, rows_done: int, rows_total: int, announced_any: bool) -> str:
    """``(42%) Runs · Phone enrichment`` while runs are active, ``✓ Done · ...`` once the
    last one ended (in this session), else the app's name."""
    if active_runs:
        share = rows_done / rows_total if rows_total else 0.0
        percent = min(99, int(100 * share))  # 100% only when it has ended
        return f"({percent}%) Runs · {APP_TITLE}"
    if announced_any:
        return f"✓ Done · {APP_TITLE}"
    return APP_TITLE


def _in_fragment_rerun() -> bool:
    ctx = get_script_run_ctx()
    return ctx is not None and bool(getattr(ctx, "fragment_ids_this_run", None))


def _tick(user: str) -> bool:
    """Announce the batches that ended since the last look and set the tab title;
    whether a run of the user's is still active."""
    try:
        if SINCE not in st.session_state:
            st.session_state[SINCE] = ui_api.activity_clock().isoformat()
        announced: list[str] = st.session_state.setdefault(ANNOUNCED, [])
        since = datetime.fromisoformat(str(st.session_state[SINCE]))
        activity = ui_api.run_activity(user, since)
        for batch_id, text in activity.ended:
            if batch_id not in announced:
                announced.append(batch_id)
                st.toast(common.plain(text), icon=":material/task_alt:")
        del announced[:-MAX_REMEMBERED]
        a = activity
        title = tab_title(a.active_runs, a.rows_done, a.rows_total, bool(announced))
        st.set_page_config(page_title=title)
        return a.active_runs > 0
    except Exception as exc:  # never break a page for a notice
        common.log_unexpected("notices", exc)
        return False


def _poll(user: str) -> None:
    def body() -> None:
        _tick(user)

    if _in_fragment_rerun():  # a full run has just looked
        common.guarded("notices", body)


def watch(user: str) -> None:
    """Once per rerun, for the signed-in ``user``."""
    if _tick(user):
        with st.sidebar:
            st.fragment(run_every=REFRESH_SECONDS)(_poll)(user)
