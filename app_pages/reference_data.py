"""Reference data (admin): load the organisation's own contacts, used as the first source."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from pages import _common as ui
from phone_core import ui_api
from phone_core.errors import FileFormatError
from phone_core.mapping import DIRECTORY_TARGETS, FIELD_LABELS, apply_mapping, suggest_mapping
from phone_core.tables import Table

# Widget keys.
UPLOAD = "ref_upload"
MAP_PREFIX = "ref_map_"
LOAD = "ref_load"
CONFIRM = "ref_confirm"
# Page state.
LOADED = "ref_loaded"  # (file token, Table | None, error message)

NOT_MAPPED = "— not in the file —"
PREVIEW_ROWS = 10
MAX_BYTES = 1024 * 1024 * 1024


def _stats() -> None:
    stats = ui_api.directory_stats()
    last: Any = stats.get("last_load")
    cols = st.columns(3)
    cols[0].metric("Contacts in the directory", f"{int(str(stats.get('contacts', 0))):,}")
    if last:
        loaded_at = last.get("loaded_at")
        cols[1].metric("Last load", loaded_at.strftime("%Y-%m-%d") if loaded_at else "")
        cols[2].metric("Rows loaded / read", f"{last['rows_loaded']:,} / {last['rows_read']:,}")
        st.caption(
            f"Last file: {last['file_name']}, loaded by {last['loaded_by']} on "
            f"{ui.when(loaded_at)} UTC. Rows without a valid phone or anything to match on "
            "are not loaded."
        )
    else:
        st.caption("Nothing loaded yet.")


def _load_table(user: str, uploaded: Any) -> tuple[Table | None, str]:
    token = f"{uploaded.file_id}:{uploaded.name}:{uploaded.size}"
    loaded = st.session_state.get(LOADED)
    if loaded and loaded[0] == token:
        return loaded[1], loaded[2]
    table: Table | None = None
    error = ""
    try:
        table = ui_api.read_upload(
            uploaded.getvalue(),
            uploaded.name,
            max_rows=ui_api.DIRECTORY_MAX_ROWS,
            max_bytes=MAX_BYTES,
        )
    except FileFormatError as exc:
        error = ui.explain(exc)
    if table is not None:
        saved = ui_api.saved_mapping(user, table.headers, ui_api.DIRECTORY_SCOPE)
        mapping = (
            saved if saved and any(saved.values()) else suggest_mapping(table, DIRECTORY_TARGETS)
        )
        for field in DIRECTORY_TARGETS:
            header = mapping.get(field)
            st.session_state[MAP_PREFIX + field] = header if header in table.headers else NOT_MAPPED
    st.session_state[LOADED] = (token, table, error)
    return table, error


def _mapping(table: Table) -> dict[str, str | None]:
    options = [NOT_MAPPED, *table.headers]
    mapping: dict[str, str | None] = {}
    cols = st.columns(3)
    for i, field in enumerate(DIRECTORY_TARGETS):
        with cols[i % 3]:
            choice = st.selectbox(FIELD_LABELS.get(field, field), options, key=MAP_PREFIX + field)
        mapping[field] = None if choice == NOT_MAPPED else choice
    return mapping


def main() -> None:
    user = ui.require_admin()
    st.title("Reference data")
    st.caption(
        "Your organisation's own contacts (a CRM export or a purchased list). Every batch "
        "looks here first, matching on LinkedIn, email, or name with company or website."
    )
    ui.show_flash()
    _stats()
    st.subheader("Load a new directory")
    uploaded = st.file_uploader(
        "Directory file (CSV or Excel) with a phone column",
        type=["csv", "tsv", "txt", "xlsx", "xls"],
        key=UPLOAD,
    )
    if uploaded is None:
        return
    table, error = _load_table(user, uploaded)
    if table is None:
        st.error(error)
        return
    st.markdown(f"**{uploaded.name}**: {table.row_count:,} rows, {len(table.headers)} columns.")
    st.dataframe(
        pd.DataFrame(table.rows[:PREVIEW_ROWS], columns=table.headers),
        hide_index=True,
        width="stretch",
        key="ref_preview",
    )
    mapping = _mapping(table)
    if not mapping.get("phone"):
        st.error("Map the column that holds the phone numbers: a directory needs one.")
        return
    if not any(mapping.get(f) for f in ("linkedin", "email", "last_name", "full_name")):
        st.error("Map at least one of LinkedIn, Email, or the person's name to match on.")
        return
    st.warning(
        f"Loading replaces the whole directory ({table.row_count:,} rows will be read). "
        "Rows without a valid phone or anything to match on are left out."
    )
    confirmed = st.checkbox("Replace the current directory with this file", key=CONFIRM)
    if st.button("Load directory", key=LOAD, type="primary", disabled=not confirmed):
        with st.spinner("Loading…"):
            read, loaded = ui_api.load_directory(
                apply_mapping(table, mapping), file_name=uploaded.name, loaded_by=user
            )
        ui_api.remember_mapping(user, table.headers, mapping, ui_api.DIRECTORY_SCOPE)
        ui.flash(f"Loaded {loaded:,} contacts from {read:,} rows of {uploaded.name}.")
        st.session_state.pop(LOADED, None)
        st.rerun()


ui.guarded("reference data", main)
