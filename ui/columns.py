"""The column-first mapping of the New batch page: one row per column of the file, with a
few of its values, a "Use as" choice (a field, or "Don't use") and how sure the suggestion is.

Widgets are keyed ``prefix + "col_" + column name`` (names are unique in a table) and hold
a field name or ``DONT_USE``. They are seeded once per file and sheet (the user's last
mapping for these columns, else the suggestion); any edit drops the "last time" note.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import streamlit as st

from phone_core import ui_batches
from phone_core.ingest import ParsedFile, Purpose
from phone_core.mapping import FIELD_LABELS
from phone_core.models import ColumnRow, Confidence
from ui import common, labels

DONT_USE = "-"
FLAT_MAX = 10  # more columns than this: the ones not suggested wait in an expander
LISTED_MAX = 12  # unused columns named in the note below the table
_SEEDED_FOR = "seeded_for"  # key suffixes of the page state, after the page's prefix
_RECALLED = "recalled"
_TOP = "top_columns"
_WIDTHS = [3, 4, 3, 1.6]
MARKS = {
    Confidence.HIGH: ":green[✓ sure]",
    Confidence.MEDIUM: ":orange[? check]",
    Confidence.LOW: ":orange[? check]",
}
FIELD_HELP = {
    "first_name": "The person's first (given) name.",
    "last_name": "The person's last (family) name.",
    "full_name": 'A single name column ("Ann Lee"); used for first and last name when '
    "those are not used.",
    "company_name": "Where the person works.",
    "company_url": "The company's website or domain, e.g. acme.com.",
    "linkedin": "A LinkedIn profile URL or the profile slug.",
    "email": "A work email address: it helps find the person.",
    "id": "Your own record id, copied to the results. Leave it unused to generate one.",
}


@dataclass(frozen=True)
class Choice:
    """What the column table says: field -> column, fields chosen for several columns, and
    the columns not used."""

    mapping: dict[str, str | None]
    clashes: dict[str, list[str]]
    unused: list[str]


def key(prefix: str, column: str) -> str:
    return f"{prefix}col_{column}"


def ensure_seeded(user: str, token: str, parsed: ParsedFile, prefix: str, purpose: Purpose) -> None:
    """Seed the choices of a new file or a newly picked sheet: the user's last mapping for
    these columns, else the suggestion."""
    seeded_for = f"{token}\n{parsed.table.sheet}"
    if st.session_state.get(prefix + _SEEDED_FOR) == seeded_for:
        return
    mapping, recalled = ui_batches.initial_mapping(user, parsed, purpose)
    by_column = {column: field for field, column in mapping.items() if column}
    for column in parsed.table.headers:
        st.session_state[key(prefix, column)] = by_column.get(column, DONT_USE)
    st.session_state[prefix + _RECALLED] = recalled
    st.session_state[prefix + _TOP] = [c for c in parsed.table.headers if c in by_column]
    st.session_state[prefix + _SEEDED_FOR] = seeded_for


def recalled(prefix: str) -> bool:
    """Whether the choices are still the user's last mapping, unedited."""
    return bool(st.session_state.get(prefix + _RECALLED))


def _edited(prefix: str) -> None:
    st.session_state[prefix + _RECALLED] = False


def current(parsed: ParsedFile, prefix: str, targets: Sequence[str]) -> Choice:
    """The choices as they stand (read before the widgets draw: the same values)."""
    chosen: dict[str, list[str]] = {}
    unused: list[str] = []
    for column in parsed.table.headers:
        field = st.session_state.get(key(prefix, column), DONT_USE)
        if field in targets:
            chosen.setdefault(field, []).append(column)
        else:
            unused.append(column)
    mapping: dict[str, str | None] = {f: chosen[f][0] if f in chosen else None for f in targets}
    clashes = {f: columns for f, columns in chosen.items() if len(columns) > 1}
    return Choice(mapping, clashes, unused)


def table(parsed: ParsedFile, prefix: str, targets: Sequence[str]) -> Choice:
    """The column table; returns the choices it shows."""
    choice = current(parsed, prefix, targets)
    rows = ui_batches.column_rows(parsed, choice.mapping)
    options = [DONT_USE, *targets]
    twice = {c for columns in choice.clashes.values() for c in columns}
    head = st.columns(_WIDTHS)
    for col, title in zip(
        head, ["Column in your file", "Sample values", "Use as", ""], strict=True
    ):
        col.caption(title)
    top = set(st.session_state.get(prefix + _TOP) or [])
    flat = len(rows) <= FLAT_MAX or not top
    for row in rows:
        if flat or row.column in top:
            _row(row, prefix, options, twice)
    rest = [] if flat else [row for row in rows if row.column not in top]
    if rest:
        title = f"The other {labels.count(len(rest), 'column')} of the file"
        with st.expander(title):
            for row in rest:
                _row(row, prefix, options, twice)
    if choice.unused:
        names = [f'"{common.plain(c)}"' for c in choice.unused[:LISTED_MAX]]
        more = len(choice.unused) - LISTED_MAX
        listed = ", ".join(names) + (f" and {more:,} more" if more > 0 else "")
        st.caption(f"Not used (kept in the enriched export): {listed}.")
    return choice


def _row(row: ColumnRow, prefix: str, options: list[str], twice: set[str]) -> None:
    name, samples, use, mark = st.columns(_WIDTHS, vertical_alignment="center")
    name.markdown(f"**{common.plain(row.column)}**")
    shown = " · ".join(_literal(value) for value in row.samples)
    samples.caption(shown or "(empty)")
    use.selectbox(
        f"Use {common.plain(row.column)} as",
        options,
        key=key(prefix, row.column),
        format_func=_option_label,
        label_visibility="collapsed",
        on_change=_edited,
        args=(prefix,),
    )
    if row.column in twice:
        mark.markdown(":red[✗ used twice]")
    elif row.confidence is not None:
        mark.markdown(MARKS[row.confidence])


_NO_LINK = "\u2060"  # a word joiner: invisible, and it stops an address from becoming a link


def _literal(value: str) -> str:
    """A cell as text: escaped, and no e-mail or web address made into a link (Streamlit's
    markdown links them after escapes are read, so a word joiner breaks the pattern)."""
    for pattern in ("@", "://", "www"):
        value = value.replace(pattern, pattern + _NO_LINK)
    return common.plain(value)


def _option_label(option: str) -> str:
    return "Don't use" if option == DONT_USE else FIELD_LABELS.get(option, option)


def clash_messages(choice: Choice) -> list[str]:
    """One message per field chosen for several columns (the submit waits for a fix)."""
    out = []
    for field, columns in choice.clashes.items():
        names = " and ".join(f'"{common.plain(c)}"' for c in columns)
        out.append(
            f"{FIELD_LABELS.get(field, field)} is chosen for {len(columns)} columns: {names}. "
            'A field can be used by one column only: set the others to "Don\'t use".'
        )
    return out


def field_legend(targets: Sequence[str]) -> None:
    with st.expander("What each field means"):
        for field in targets:
            st.markdown(f"**{FIELD_LABELS.get(field, field)}**: {FIELD_HELP.get(field, '')}")
