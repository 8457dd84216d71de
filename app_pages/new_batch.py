"""New batch: upload a lead list, say what its columns hold, see the cost, submit."""

from __future__ import annotations

import streamlit as st

from phone_core import ui_batches
from phone_core.ingest import ParsedFile
from phone_core.records import ENRICHABLE_RULE
from ui import batch_view, columns, common, labels, upload

# Widget keys (a column's "Use as" choice: columns.key(STATE_PREFIX, column)).
UPLOAD = "nb_upload"
SHEET = "nb_sheet"
MAX_CREDITS = "nb_max_credits"
LABEL = "nb_label"
SUBMIT = "nb_submit"
SOURCES = "nb_sources"
# Page state (UI state only: the file, its tables and pre-flight come from phone_core).
STATE_PREFIX = "nb_"
CREDITS_SET_FOR = "nb_credits_set_for"  # the plan the max-credits default was set for
SUBMITTED_FOR = "nb_submitted_for"  # the upload token that was submitted ...
SUBMITTED_RUNS = "nb_submitted_runs"  # ... and its run ids

PREVIEW_ROWS = 20


def _show_file(name: str, opened: upload.Opened, parsed: ParsedFile) -> None:
    table = parsed.table
    size = (
        f"{labels.count(table.row_count, 'row')}, "
        f"{labels.count(len(table.headers), 'column')} ({upload.describe(table)})"
    )
    st.markdown(f"**{common.plain(name)}**: {size}.")
    if opened.error:  # a picked sheet that could not be read
        st.warning(opened.error)
    upload.sheet_picker(parsed, SHEET)
    note = upload.header_note(table)
    if note:
        st.info(note)
    with st.expander("Preview of the file"):
        upload.preview(table, PREVIEW_ROWS, "nb_preview")


def _columns(parsed: ParsedFile) -> columns.Choice:
    st.subheader("2. Columns")
    if columns.recalled(STATE_PREFIX):
        how = "Using the mapping you chose last time for files with these columns."
    else:
        how = 'Suggested from the column names and their contents: look at those marked "? check".'
    st.caption(
        f"Choose what each column holds. {how} A row can be looked up when it has "
        f"{ENRICHABLE_RULE}."
    )
    choice = columns.table(parsed, STATE_PREFIX, ui_batches.BATCH.targets)
    columns.field_legend(ui_batches.BATCH.targets)
    return choice


def _submit(user: str, token: str, parsed: ParsedFile, mapping: dict[str, str | None]) -> None:
    sources, none_chosen = batch_view.source_picker(SOURCES)
    pf = ui_batches.preflight(user, parsed, mapping, token, sources)
    batch_view.show_preflight(pf)
    plan = batch_view.plan_token(token, mapping) + "|" + ",".join(sources or [])
    keys = {"max_credits": MAX_CREDITS, "label": LABEL, "set_for": CREDITS_SET_FOR}
    max_credits, blocked = batch_view.budget_form(pf, plan, keys)
    blocked = blocked or none_chosen
    label = batch_view.submit_label(pf, max_credits)
    if st.button(label, key=SUBMIT, type="primary", disabled=blocked):
        name = str(st.session_state.get(LABEL) or "").strip()
        accepted = ui_batches.submit_upload(user, parsed, mapping, max_credits, name, sources)
        run_ids = [a.run_id for a in accepted]
        st.session_state[SUBMITTED_FOR] = token
        st.session_state[SUBMITTED_RUNS] = run_ids
        st.session_state[common.FOCUS_RUN] = run_ids[0]
        st.rerun()


def _page(user: str) -> int:
    """The page below the steps; returns the step reached (0-based, 3: submitted)."""
    st.subheader("1. Upload")
    uploaded = st.file_uploader(
        "Lead list (CSV or Excel)",
        type=upload.UPLOAD_TYPES,
        key=UPLOAD,
        max_upload_size=ui_batches.max_upload_mb(ui_batches.BATCH),  # the one limit, said up front
        help="CSV separated by commas, semicolons, tabs or pipes, or an Excel .xlsx "
        "workbook. Title rows above the column names are skipped.",
    )
    if uploaded is None:
        st.info(
            "Export your leads from your CRM or prospecting tool with names and companies, "
            "LinkedIn profiles or emails, then drop the file here."
        )
        return 0
    opened = upload.open_upload(uploaded, STATE_PREFIX, ui_batches.BATCH, sheet_key=SHEET)
    parsed = opened.parsed
    if parsed is None:
        st.error(opened.error)  # already explained (escaped)
        return 0
    if opened.fresh:
        st.session_state[LABEL] = uploaded.name[:200]
    columns.ensure_seeded(user, opened.token, parsed, STATE_PREFIX, ui_batches.BATCH)
    _show_file(uploaded.name, opened, parsed)
    choice = _columns(parsed)
    for message in columns.clash_messages(choice):
        st.error(message)
    if choice.clashes:
        return 1
    problem = ui_batches.mapping_problem(choice.mapping)
    if problem:
        st.error(common.plain(problem))
        return 1
    for warning in ui_batches.column_warnings(parsed, choice.mapping):
        st.warning(common.plain(warning))
    if not ui_batches.can_enrich(choice.mapping):
        return 1
    if st.session_state.get(SUBMITTED_FOR) == opened.token:
        # Not the pre-flight again: recomputed now it would count this batch's own
        # results as "already known" and confuse what was just spent.
        batch_view.show_submitted(list(st.session_state.get(SUBMITTED_RUNS) or []))
        return 3
    _submit(user, opened.token, parsed, choice.mapping)
    return 2


def main() -> None:
    user = common.require_user()
    st.title("New batch")
    steps = st.container()
    reached = _page(user)
    with steps:
        batch_view.stepper(reached)


common.guarded("new batch", main)
