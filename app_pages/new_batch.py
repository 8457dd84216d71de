"""New batch: upload a lead list, check the column mapping, see the cost, submit."""

from __future__ import annotations

import streamlit as st

from phone_core import ui_api
from phone_core.ingest import ParsedFile
from ui import batch_view, common, labels, upload

# Widget keys.
UPLOAD = "nb_upload"
MAP_PREFIX = "nb_map_"
MAX_CREDITS = "nb_max_credits"
LABEL = "nb_label"
SUBMIT = "nb_submit"
# Page state (UI state only: the file, its tables and pre-flight come from phone_core).
STATE_PREFIX = "nb_"
CREDITS_SET_FOR = "nb_credits_set_for"  # the plan the max-credits default was set for
SUBMITTED_FOR = "nb_submitted_for"  # the upload token that was submitted ...
SUBMITTED_RUNS = "nb_submitted_runs"  # ... and its run ids

PREVIEW_ROWS = 20
FIELD_HELP = {
    "first_name": "The person's first (given) name.",
    "last_name": "The person's last (family) name.",
    "full_name": "A single name column; used to fill first and last name when those are "
    "not mapped.",
    "company_name": "Where the person works.",
    "company_url": "The company's website or domain, e.g. acme.com.",
    "linkedin": "A LinkedIn profile URL or the profile slug.",
    "email": "A work email address: it helps find the person.",
    "id": "Your own record id, copied to the results. Leave unmapped to generate one.",
}


def _show_file(name: str, parsed: ParsedFile) -> None:
    table = parsed.table
    how = upload.describe(table)
    size = (
        f"{labels.count(table.row_count, 'row')}, "
        f"{labels.count(len(table.headers), 'column')} ({how})"
    )
    st.markdown(f"**{common.plain(name)}**: {size}.")
    with st.expander(f"Preview (first {min(PREVIEW_ROWS, table.row_count)} rows)", expanded=True):
        upload.preview(table, PREVIEW_ROWS, "nb_preview")


def _mapping(parsed: ParsedFile) -> dict[str, str | None]:
    st.subheader("2. Check the columns")
    if upload.recalled(MAP_PREFIX):
        st.caption("Using the mapping you chose last time for files with these columns.")
    else:
        st.caption(
            "Matched automatically from the column names and contents. Check them, and "
            "change any that are wrong."
        )
    targets = ui_api.BATCH.targets
    return upload.mapping_form(parsed.table, targets, MAP_PREFIX, 4, FIELD_HELP)


def _submit(user: str, token: str, parsed: ParsedFile, mapping: dict[str, str | None]) -> None:
    pf = ui_api.preflight(user, parsed, mapping, token)
    batch_view.show_preflight(pf)
    plan = batch_view.plan_token(token, mapping)
    keys = {"max_credits": MAX_CREDITS, "label": LABEL, "set_for": CREDITS_SET_FOR}
    max_credits, blocked = batch_view.budget_form(pf, plan, keys)
    label = batch_view.submit_label(pf, max_credits)
    if st.button(label, key=SUBMIT, type="primary", disabled=blocked):
        name = str(st.session_state.get(LABEL) or "").strip()
        accepted = ui_api.submit_upload(user, parsed, mapping, max_credits, name)
        run_ids = [a.run_id for a in accepted]
        st.session_state[SUBMITTED_FOR] = token
        st.session_state[SUBMITTED_RUNS] = run_ids
        st.session_state[common.FOCUS_RUN] = run_ids[0]
        st.rerun()


def main() -> None:
    user = common.require_user()
    st.title("New batch")
    st.caption(
        "Upload a lead list, check the columns, and see what it may cost before anything is spent."
    )
    st.subheader("1. Upload a lead list")
    uploaded = st.file_uploader(
        "Lead list (CSV or Excel)",
        type=upload.UPLOAD_TYPES,
        key=UPLOAD,
        max_upload_size=ui_api.max_upload_mb(ui_api.BATCH),  # the one limit, said up front
        help="CSV separated by commas, semicolons, tabs or pipes, in any common encoding, or "
        "an Excel .xlsx workbook. The first row must hold the column names.",
    )
    if uploaded is None:
        st.info(
            "Export your leads from your CRM or prospecting tool with names and companies, "
            "LinkedIn profiles or emails, then drop the file here."
        )
        return
    opened = upload.open_upload(uploaded, STATE_PREFIX, ui_api.BATCH)
    if opened.parsed is None:
        st.error(opened.error)  # already explained (escaped)
        return
    if opened.fresh:
        upload.seed_mapping(user, opened.parsed, MAP_PREFIX, ui_api.BATCH)
        st.session_state[LABEL] = uploaded.name[:200]
    _show_file(uploaded.name, opened.parsed)
    mapping = _mapping(opened.parsed)
    problem = ui_api.mapping_problem(mapping)
    if problem:
        st.error(common.plain(problem))
        return
    for warning in ui_api.mapping_warnings(opened.parsed, mapping):
        st.warning(common.plain(warning))
    if not ui_api.can_enrich(mapping):
        return
    if st.session_state.get(SUBMITTED_FOR) == opened.token:
        # Not the pre-flight again: recomputed now it would count this batch's own
        # results as "already known" and confuse what was just spent.
        batch_view.show_submitted(list(st.session_state.get(SUBMITTED_RUNS) or []))
        return
    _submit(user, opened.token, opened.parsed, mapping)


common.guarded("new batch", main)
