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

from phone_core import ui_api
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
    error: str  # why the file could not be read, when parsed is None
    fresh: bool  # the first run of the page with this upload


def file_token(uploaded: Any) -> str:
    return f"{uploaded.file_id}:{uploaded.name}:{uploaded.size}"


def open_upload(uploaded: Any, prefix: str, purpose: Purpose) -> Opened:
    """Read the uploaded file (from the cache after the first run); errors as a message."""
    token = file_token(uploaded)
    fresh = st.session_state.get(prefix + _FILE) != token
    digest = None if fresh else st.session_state.get(prefix + _DIGEST) or None
    parsed: ParsedFile | None = None
    error = ""
    try:
        # A directory (up to millions of rows) is read from the upload itself, a chunk at a
        # time, never copied: Streamlit already holds its bytes.
        data = uploaded if purpose is ui_api.DIRECTORY else uploaded.getvalue
        parsed = ui_api.read_upload(uploaded.name, data, purpose, digest=digest)
    except FileFormatError as exc:
        error = common.explain(exc)
    st.session_state[prefix + _FILE] = token
    st.session_state[prefix + _DIGEST] = parsed.digest if parsed else ""
    return Opened(token, parsed, error, fresh)


def seed_mapping(user: str, parsed: ParsedFile, prefix: str, purpose: Purpose) -> None:
    """Set the mapping widgets of a new file: the user's last mapping, else the suggestion."""
    mapping, recalled = ui_api.initial_mapping(user, parsed, purpose)
    for field in purpose.targets:
        st.session_state[prefix + field] = mapping.get(field) or NOT_MAPPED
    st.session_state[prefix + _RECALLED] = recalled


def recalled(prefix: str) -> bool:
    """Whether the mapping widgets were set from the user's last mapping."""
    return bool(st.session_state.get(prefix + _RECALLED))


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


def preview(table: Table, rows: int, key: str) -> None:
    st.dataframe(
        pd.DataFrame(table.rows[:rows], columns=table.headers),
        hide_index=True,
        width="stretch",
        key=key,
    )
