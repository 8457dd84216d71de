"""The uploaded file and its column mapping, shared by the New batch and Reference data pages.

The parsed file comes from ``phone_core`` on every rerun (it keeps recent files in a small
cache keyed by their sha256); the session keeps only UI state: the file's token, its
digest (so a rerun does not hash the bytes again), and the widget values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from phone_core import ui_batches
from phone_core.errors import FileFormatError
from phone_core.ingest import ParsedFile, Purpose
from phone_core.mapping import FIELD_LABELS
from phone_core.tables import Table
from ui import common

NOT_MAPPED = "— not in the file —"
UPLOAD_TYPES = ["csv", "tsv", "txt", "xlsx", "xls"]
_FILE = "file"  # key suffixes of the page state, after the page's prefix
_DIGEST = "digest"
_RECALLED = "recalled"


@dataclass(frozen=True)
class Opened:
    token: str  # this upload (a new upload of the same file gets a new one)
    parsed: ParsedFile | None
    error: str  # why the file (or the picked sheet, then parsed is the default) was not read
    fresh: bool  # the first run of the page with this upload


def file_token(uploaded: Any) -> str:
    return f"{uploaded.file_id}:{uploaded.name}:{uploaded.size}"


def open_upload(
    uploaded: Any, prefix: str, purpose: Purpose, sheet_key: str | None = None
) -> Opened:
    """Read the uploaded file (from the cache after the first run); errors as a message.

    ``sheet_key``: the session key of a sheet picker; a workbook is read at the sheet it
    names (a new file: the default sheet, which the key is then set to). A picked sheet that
    cannot be read falls back to the default one, with the reason in ``error``.
    """
    token = file_token(uploaded)
    fresh = st.session_state.get(prefix + _FILE) != token
    digest = None if fresh else st.session_state.get(prefix + _DIGEST) or None
    sheet = None if fresh or sheet_key is None else st.session_state.get(sheet_key) or None
    parsed: ParsedFile | None = None
    error = ""
    try:
        # A directory (up to millions of rows) is read from the upload itself, a chunk at a
        # time, never copied: Streamlit already holds its bytes.
        data = uploaded if purpose is ui_batches.DIRECTORY else uploaded.getvalue
        parsed = ui_batches.read_upload(uploaded.name, data, purpose, digest=digest, sheet=sheet)
    except FileFormatError as exc:
        error = common.explain(exc)
    if parsed is None and sheet is not None:
        try:  # the picked sheet holds no table: back to the one read by default
            parsed = ui_batches.read_upload(uploaded.name, uploaded.getvalue, purpose)
            error = f'The sheet "{common.plain(sheet)}" could not be read: {error}'
        except FileFormatError:
            pass
    if sheet_key is not None and parsed is not None and (fresh or parsed.table.sheet != sheet):
        st.session_state[sheet_key] = parsed.table.sheet
    st.session_state[prefix + _FILE] = token
    st.session_state[prefix + _DIGEST] = parsed.digest if parsed else ""
    return Opened(token, parsed, error, fresh)


def seed_mapping(user: str, parsed: ParsedFile, prefix: str, purpose: Purpose) -> None:
    """Set the mapping widgets of a new file: the user's last mapping, else the suggestion."""
    mapping, recalled = ui_batches.initial_mapping(user, parsed, purpose)
    for field in purpose.targets:
        st.session_state[prefix + field] = mapping.get(field) or NOT_MAPPED
    st.session_state[prefix + _RECALLED] = recalled


def mapping_form(
    table: Table,
    fields: Sequence[str],
    prefix: str,
    columns: int,
    help_texts: Mapping[str, str] | None = None,
) -> dict[str, str | None]:
    """One select box per field (key ``prefix + field``); field -> column or None."""
    options = [NOT_MAPPED, *table.headers]
    mapping: dict[str, str | None] = {}
    cols = st.columns(columns)
    for i, field in enumerate(fields):
        with cols[i % columns]:
            choice = st.selectbox(
                FIELD_LABELS.get(field, field),
                options,
                key=prefix + field,
                help=(help_texts or {}).get(field),
            )
        mapping[field] = None if choice == NOT_MAPPED else choice
    return mapping


def describe(table: Table) -> str:
    """How the file was read: an Excel workbook, or the CSV's separator (its encoding, e.g.
    cp1252, is handled and means nothing to a sales user)."""
    if not table.delimiter:
        return "Excel workbook"
    names = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
    return f"CSV, {names.get(table.delimiter, repr(table.delimiter))}-separated"


def sheet_picker(parsed: ParsedFile, key: str) -> None:
    """A workbook's sheet picker (``key`` is ``open_upload``'s ``sheet_key``); nothing for
    a CSV or a workbook of one sheet."""
    if len(parsed.sheets) < 2:
        return
    st.selectbox(
        "Sheet",
        parsed.sheets,
        key=key,
        help=f"This workbook has {len(parsed.sheets)} sheets. The first one holding a table "
        "was read; choose another if your list is there.",
    )


def header_note(table: Table) -> str:
    """Which row held the column names when it was not the first, or ''."""
    if table.header_row == 0:
        return (
            "The file has no row of column names (its first row already holds an email "
            "address or a link), so its columns are named column_1, column_2, and so on. "
            "Choose what each one holds below."
        )
    if not table.rows_above:
        return ""
    above = "the row" if table.rows_above == 1 else f"the {table.rows_above:,} rows"
    were = "was" if table.rows_above == 1 else "were"
    return (
        f"Column names found on row {table.header_row:,}: {above} above it (a title or "
        f"notes) {were} skipped."
    )


def preview(table: Table, rows: int, key: str) -> None:
    st.dataframe(
        pd.DataFrame(table.rows[:rows], columns=table.headers),
        hide_index=True,
        width="stretch",
        key=key,
    )
