"""Do-not-call lists (admin): load, replace and remove suppression lists; the install's
mode; a one-click re-check of past runs against the lists as they are now."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from phone_core import ui_admin, ui_api
from phone_core.errors import PhoneError
from ui import common, labels

UPLOAD = "dnc_upload"
NAME = "dnc_name"
LOAD = "dnc_load"
REMOVE_PICK = "dnc_remove_pick"
REMOVE = "dnc_remove"
RECHECK = "dnc_recheck"
REPORT = "dnc_report"  # the last re-check's report (UI state: counts only)

MODES = {
    "flag": "Flag: listed phones are returned, marked dnc = true with the list's name in the "
    "enriched files, and charged as usual.",
    "withhold": "Withhold: listed phones are not returned (status suppressed, the list's name "
    "as the detail in credits.csv) and the record costs nothing.",
}


def _lists() -> None:
    lists = ui_admin.suppression_lists()
    if not lists:
        st.info("No do-not-call list is loaded: every phone found is returned unmarked.")
        return
    frame = pd.DataFrame(
        [
            {
                "List": i.name,
                "Phones": i.phones,
                "People (email / LinkedIn)": i.people,
                "Rows read": i.rows_read,
                "Rows without a usable value": i.rows_refused,
                "Loaded by": i.loaded_by,
                "Loaded (UTC)": labels.when(i.loaded_at),
            }
            for i in lists
        ]
    )
    st.dataframe(frame, hide_index=True, width="stretch")
    cols = st.columns([3, 1])
    pick = cols[0].selectbox("List to remove", [i.name for i in lists], key=REMOVE_PICK)
    if cols[1].button("Remove list", key=REMOVE, type="secondary") and pick:
        try:
            ui_admin.remove_suppression(str(pick))
        except PhoneError as exc:
            st.error(common.explain(exc))
            return
        common.flash(f"Removed the list {common.plain(str(pick))}. Later runs no longer use it.")
        st.rerun()


def _load(user: str) -> None:
    st.markdown("#### Load a list")
    st.caption(
        "A CSV or Excel file with a column of phone numbers (any format: they are matched in "
        "E.164) and/or columns of emails or LinkedIn profiles. A file of one column needs no "
        "header. Loading under the name of an existing list replaces that list."
    )
    uploaded = st.file_uploader("List file", type=["csv", "txt", "xlsx"], key=UPLOAD)
    name = st.text_input("List name (default: the file's name)", key=NAME, max_chars=100)
    if uploaded is None or not st.button("Load list", key=LOAD, type="primary"):
        return
    with st.spinner("Loading the list…"):
        try:
            info = ui_admin.load_suppression(uploaded, uploaded.name, name.strip(), loaded_by=user)
        except PhoneError as exc:
            st.error(f"Nothing was loaded. {common.explain(exc)}")
            return
    common.flash(
        f"Loaded {common.plain(info.name)}: {labels.count(info.phones, 'phone')} and "
        f"{labels.count(info.people, 'person', 'people')}. Later runs are checked against it; "
        "re-check past runs below to mark their files."
    )
    st.rerun()


def _recheck() -> None:
    st.markdown("#### Past runs")
    st.caption(
        "Lists apply to runs that start after they are loaded. Re-checking marks the stored "
        "enriched files of every finished run (and its batch) by the lists as they are now, "
        "so the next download shows dnc = true. results.csv and credits.csv stay as "
        "delivered and nothing is re-charged. The report counts rows per run, never the "
        "numbers, so you can forward it to the owners."
    )
    if st.button("Re-check past runs", key=RECHECK):
        with st.spinner("Checking past runs…"):
            report = ui_admin.recheck_past_runs()
        st.session_state[REPORT] = (report.runs_checked, report.newly_marked, report.to_csv())
    done = st.session_state.get(REPORT)
    if done:
        runs_checked, newly, data = done
        st.success(
            f"Checked {labels.count(runs_checked, 'run')}: "
            f"{labels.count(newly, 'row')} newly marked."
        )
        st.download_button("Download the report (CSV)", data, "dnc-recheck.csv", "text/csv")


def main() -> None:
    user = common.require_admin()
    st.title("Do-not-call lists")
    common.show_flash()
    mode = ui_api.dnc_mode()
    st.markdown(f"**Mode: {mode}** (setting PHONE_DNC_MODE). {MODES.get(mode, '')}")
    st.caption(
        "Every phone a batch finds, from a source or the cache, is checked against these "
        "lists after the lookup and before the record is charged: by the phone itself, and "
        "by the person's email and LinkedIn."
    )
    common.guarded("suppression lists", _lists)
    common.guarded("suppression load", lambda: _load(user))
    common.guarded("suppression recheck", _recheck)


main()
