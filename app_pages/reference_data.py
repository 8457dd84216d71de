"""Reference data (admin): load the organisation's own contacts, used as the first source."""

from __future__ import annotations

from typing import Any

import streamlit as st

from phone_core import ui_admin, ui_batches
from phone_core.errors import FileFormatError
from phone_core.records import ENRICHABLE_RULE
from ui import common, labels, upload

# Widget keys.
UPLOAD = "ref_upload"
MAP_PREFIX = "ref_map_"
LOAD = "ref_load"
CONFIRM = "ref_confirm"
MODE = "ref_mode"
REPLACE, APPEND = "Replace the directory", "Add to the directory"
LOADED_TOKEN = "ref_loaded_token"  # the upload just loaded (no second load of it)
# Page state (UI state only: the parsed file comes from phone_core).
STATE_PREFIX = "ref_"

PREVIEW_ROWS = 10


def _stats() -> None:
    stats = ui_admin.directory_stats()
    last: Any = stats.get("last_load")
    cols = st.columns(3)
    cols[0].metric("Contacts in the directory", f"{int(str(stats.get('contacts', 0))):,}")
    if last:
        loaded_at = last.get("loaded_at")
        cols[1].metric("Last load", loaded_at.strftime("%Y-%m-%d") if loaded_at else "")
        cols[2].metric("Rows loaded / read", f"{last['rows_loaded']:,} / {last['rows_read']:,}")
        how = "replaced the directory" if last["replaced"] else "was added to the directory"
        updated = last.get("rows_replaced") or 0
        st.caption(
            f"Last file: {common.plain(last['file_name'])}, loaded by "
            f"{common.plain(last['loaded_by'])} on {labels.when(loaded_at)} UTC; it {how}"
            + (f" and updated {labels.count(updated, 'contact')}" if updated else "")
            + ". Rows without a valid phone or anything to match on are not loaded."
        )
    else:
        st.caption("Nothing loaded yet.")


def _load(user: str, uploaded: Any, parsed: Any, mapping: dict[str, str | None]) -> None:
    replace = st.session_state.get(MODE, REPLACE) == REPLACE
    bar = st.progress(0.0, text="Reading the file…")

    def progress(rows: int, share: float) -> None:
        bar.progress(min(max(share, 0.0), 1.0), text=f"{labels.count(rows, 'row')} read")

    try:
        read, loaded = ui_batches.load_directory(
            user, parsed, mapping, uploaded, replace=replace, progress=progress
        )
    except FileFormatError as exc:
        bar.empty()
        st.error(f"Nothing was loaded and the directory is unchanged. {common.explain(exc)}")
        return
    done = "Loaded" if replace else "Added"
    common.flash(
        f"{done} {labels.count(loaded, 'contact')} from {labels.count(read, 'row')} of "
        f"{common.plain(uploaded.name)}."
    )
    st.session_state[LOADED_TOKEN] = upload.file_token(uploaded)  # no second load of it
    st.rerun()


def main() -> None:
    user = common.require_admin()
    st.title("Reference data")
    st.caption(
        "Your organisation's own contacts (a CRM export or a purchased list). Every batch "
        f"looks here first, matching on {ENRICHABLE_RULE}."
    )
    common.show_flash()
    _stats()
    st.subheader("Load a new directory")
    uploaded = st.file_uploader(
        "Directory file (CSV or Excel) with a phone column",
        type=upload.UPLOAD_TYPES,
        key=UPLOAD,
        max_upload_size=ui_batches.max_upload_mb(ui_batches.DIRECTORY),
    )
    if uploaded is None:
        return
    opened = upload.open_upload(uploaded, STATE_PREFIX, ui_batches.DIRECTORY)
    if opened.parsed is None:
        st.error(opened.error)  # already explained (escaped)
        return
    if st.session_state.get(LOADED_TOKEN) == opened.token:
        st.info(
            "This file is loaded. To load another one, remove it above and upload the new file."
        )
        return
    parsed, table = opened.parsed, opened.parsed.table
    if opened.fresh:
        upload.seed_mapping(user, parsed, MAP_PREFIX, ui_batches.DIRECTORY)
    rows = ("more than " if table.partial else "") + labels.count(table.row_count, "row")
    size = f"{rows}, {labels.count(len(table.headers), 'column')}"
    st.markdown(f"**{common.plain(uploaded.name)}**: {size}.")
    upload.preview(table, PREVIEW_ROWS, "ref_preview")
    mapping = upload.mapping_form(table, ui_batches.DIRECTORY.targets, MAP_PREFIX, 3)
    problem = ui_batches.mapping_problem(mapping, ui_batches.DIRECTORY)
    if problem:
        st.error(common.plain(problem))
        return
    if table.partial:
        st.caption(
            f"The first {table.row_count:,} rows are shown; the whole file is read when it "
            "is loaded."
        )
    mode = st.radio("How to load it", [REPLACE, APPEND], key=MODE, horizontal=True)
    if mode == REPLACE:
        rows = "every row" if table.partial else f"{table.row_count:,} rows"
        st.warning(
            f"Loading replaces the whole directory ({rows} will be read). Rows without a "
            "valid phone or anything to match on are left out."
        )
        confirmed = st.checkbox("Replace the current directory with this file", key=CONFIRM)
    else:
        st.info(
            "The file's contacts are added. A contact already in the directory (same "
            "LinkedIn, else email, else name with website or company) gets the file's phone."
        )
        confirmed = True
    if st.button("Load directory", key=LOAD, type="primary", disabled=not confirmed):
        _load(user, uploaded, parsed, mapping)


common.guarded("reference data", main)
