"""New batch: upload a lead list, check the column mapping, see the cost, submit."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import pandas as pd
import streamlit as st

from pages import _common as ui
from phone_core import ui_api
from phone_core.errors import FileFormatError
from phone_core.mapping import (
    FIELD_LABELS,
    PERSON_TARGETS,
    apply_mapping,
    mapping_warnings,
    suggest_mapping,
)
from phone_core.models import MAX_BATCH, Preflight
from phone_core.tables import Table

# Widget keys.
UPLOAD = "nb_upload"
MAP_PREFIX = "nb_map_"
MAX_CREDITS = "nb_max_credits"
LABEL = "nb_label"
SUBMIT = "nb_submit"
# Page state.
LOADED = "nb_loaded"  # (file token, Table | None, error message)
MAPPING_ORIGIN = "nb_mapping_origin"  # "saved" | "suggested"
PLAN = "nb_plan"  # (plan token, mapped rows, Preflight)
CREDITS_SET_FOR = "nb_credits_set_for"  # plan token the max-credits default was set for
SUBMITTED = "nb_submitted"  # (file token, [run ids])

NOT_MAPPED = "— not in the file —"
PREVIEW_ROWS = 20
UPLOAD_TYPES = ["csv", "tsv", "txt", "xlsx", "xls"]
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
NO_COLUMNS = (
    "None of the columns could be recognised as a name, company, website, LinkedIn or email "
    "column. Check that the first row holds the column names, or pick the columns below."
)


def _file_token(uploaded: Any) -> str:
    return f"{uploaded.file_id}:{uploaded.name}:{uploaded.size}"


def _plan_token(file_token: str, mapping: Mapping[str, str | None]) -> str:
    raw = json.dumps([file_token, sorted(mapping.items())], ensure_ascii=False)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def _load(user: str, uploaded: Any) -> tuple[str, Table | None, str]:
    """Read the upload once per file and seed the mapping widgets for it."""
    token = _file_token(uploaded)
    loaded = st.session_state.get(LOADED)
    if loaded and loaded[0] == token:
        return loaded  # type: ignore[no-any-return]
    table: Table | None = None
    error = ""
    try:
        table = ui_api.read_upload(uploaded.getvalue(), uploaded.name)
    except FileFormatError as exc:
        error = ui.explain(exc)
    if table is not None:
        saved = ui_api.saved_mapping(user, table.headers)
        mapping = saved if saved and any(saved.values()) else suggest_mapping(table)
        st.session_state[MAPPING_ORIGIN] = "saved" if mapping is saved else "suggested"
        for field in PERSON_TARGETS:
            header = mapping.get(field)
            st.session_state[MAP_PREFIX + field] = header if header in table.headers else NOT_MAPPED
        st.session_state[LABEL] = uploaded.name[:200]
    st.session_state[LOADED] = (token, table, error)
    st.session_state.pop(PLAN, None)
    return token, table, error


def _show_file(name: str, table: Table) -> None:
    how = "Excel workbook" if not table.delimiter else _describe_csv(table)
    st.markdown(f"**{name}**: {table.row_count:,} rows, {len(table.headers)} columns ({how}).")
    with st.expander(f"Preview (first {min(PREVIEW_ROWS, table.row_count)} rows)", expanded=True):
        preview = pd.DataFrame(table.rows[:PREVIEW_ROWS], columns=table.headers)
        st.dataframe(preview, hide_index=True, width="stretch", key="nb_preview")


def _describe_csv(table: Table) -> str:
    names = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
    return f"CSV, {names.get(table.delimiter, repr(table.delimiter))}-separated, {table.encoding}"


def _mapping_widgets(table: Table) -> dict[str, str | None]:
    st.subheader("2. Check the columns")
    if st.session_state.get(MAPPING_ORIGIN) == "saved":
        st.caption("Using the mapping you chose last time for files with these columns.")
    else:
        st.caption(
            "Matched automatically from the column names and contents. Check them, and "
            "change any that are wrong."
        )
    options = [NOT_MAPPED, *table.headers]
    mapping: dict[str, str | None] = {}
    cols = st.columns(4)
    for i, field in enumerate(PERSON_TARGETS):
        with cols[i % 4]:
            choice = st.selectbox(
                FIELD_LABELS.get(field, field),
                options,
                key=MAP_PREFIX + field,
                help=FIELD_HELP.get(field),
            )
        mapping[field] = None if choice == NOT_MAPPED else choice
    return mapping


def _can_enrich(mapping: Mapping[str, str | None]) -> bool:
    has = {field for field, header in mapping.items() if header}
    names = {"first_name", "last_name"} <= has or "full_name" in has
    return bool(has & {"linkedin", "email"}) or (
        names and bool(has & {"company_name", "company_url"})
    )


def _plan(
    user: str, token: str, table: Table, mapping: Mapping[str, str | None]
) -> tuple[str, list[dict[str, str]], Preflight]:
    plan = _plan_token(token, mapping)
    cached = st.session_state.get(PLAN)
    if cached and cached[0] == plan:
        return cached  # type: ignore[no-any-return]
    rows = apply_mapping(table, mapping)
    result = (plan, rows, ui_api.preflight(user, rows))
    st.session_state[PLAN] = result
    return result


def _show_preflight(pf: Preflight) -> None:
    st.subheader("3. What this batch will do")
    top = st.columns(4)
    top[0].metric("Rows in the file", f"{pf.rows:,}")
    top[1].metric("Can be enriched", f"{pf.enrichable:,}")
    top[2].metric("Skipped (missing fields)", f"{sum(pf.skipped.values()):,}")
    top[3].metric("Duplicates in the file", f"{pf.duplicates:,}", help="Charged once.")
    bottom = st.columns(4)
    bottom[0].metric("Already known (free)", f"{pf.cache_hits:,}", help="Found recently.")
    bottom[1].metric("To look up", f"{pf.to_look_up:,}")
    bottom[2].metric("Worst-case cost", f"{pf.worst_case_credits:,} credits")
    bottom[3].metric("Your available credits", f"{pf.available_credits:,}")
    per = pf.per_record_worst_case
    credits_word = f"{per} credit{'s' if per != 1 else ''}"
    if ui_api.pays_only_for_found():
        how = (
            f"You pay only when a phone is found, at most {credits_word} per row, so the "
            "worst case assumes every looked-up row finds a phone."
        )
    else:
        how = (
            f"Some sources charge per lookup: each looked-up row costs at most {credits_word}, "
            "found or not."
        )
    st.caption(f"Skipped rows, duplicates and already-known phones cost nothing. {how}")
    for reason, count in pf.skipped.items():
        st.caption(f"{count:,} rows will be skipped: {ui.detail_label(reason)}.")
    if pf.runs_needed > 1:
        st.info(
            f"This file has {pf.rows:,} rows, more than {MAX_BATCH:,} per batch: it will be "
            f"sent as {pf.runs_needed} runs of at most {MAX_BATCH:,} rows each, one after "
            "the other, all sharing the one credit budget you set below."
        )


def _budget_and_submit(
    user: str,
    token: str,
    table: Table,
    mapping: Mapping[str, str | None],
    plan: str,
    rows: list[dict[str, str]],
    pf: Preflight,
) -> None:
    st.subheader("4. Set the budget and submit")
    available = pf.available_credits
    blocked = False
    if pf.enrichable == 0:
        st.error(
            "No row of this file can be enriched with this mapping: each row needs a "
            "LinkedIn profile, an email, or a first and last name with a company."
        )
        blocked = True
    elif available < 1:
        st.error(
            "You have no credits available, so this batch cannot start. Ask an "
            "administrator to grant you credits."
        )
        blocked = True
    default = max(1, min(pf.worst_case_credits, available))
    if st.session_state.get(CREDITS_SET_FOR) != plan:
        st.session_state[MAX_CREDITS] = default
        st.session_state[CREDITS_SET_FOR] = plan
    left, right = st.columns([1, 2])
    with left:
        max_credits = int(
            st.number_input(
                "Maximum credits to spend",
                min_value=1,
                step=1,
                key=MAX_CREDITS,
                help="The batch never spends more than this. It is reserved from your "
                "balance while the batch runs; what is not spent is released at the end.",
            )
        )
    with right:
        st.text_input("Batch name (shown on the Runs page)", key=LABEL, max_chars=200)
    if pf.to_look_up == 0 and pf.enrichable > 0:
        st.success("Every row is a duplicate or already known: this batch should cost nothing.")
    if max_credits > available and not blocked:
        st.warning(
            f"You have {available:,} credits available: lower the maximum to "
            f"{available:,} or less, or ask an administrator for more credits."
        )
        blocked = True
    elif max_credits < pf.worst_case_credits and not blocked:
        st.info(
            f"This cap is below the worst case ({pf.worst_case_credits:,} credits). The batch "
            "stops when the cap is reached; rows it did not reach are marked 'not processed' "
            "and can be re-run later from the Runs page."
        )
    if not blocked:
        st.markdown(
            f"Submitting reserves **{max_credits:,} credits** of your {available:,} while the "
            f"batch runs. It never spends more than {max_credits:,}; the rest is released "
            "when it ends."
        )
    label = f"Submit {pf.rows:,} rows (spend at most {max_credits:,} credits)"
    if st.button(label, key=SUBMIT, type="primary", disabled=blocked):
        accepted = ui_api.submit(
            user,
            rows,
            max_credits,
            source_rows=ui_api.source_rows(table),
            label=str(st.session_state.get(LABEL) or "").strip(),
        )
        ui_api.remember_mapping(user, table.headers, mapping)
        run_ids = [a.run_id for a in accepted]
        st.session_state[SUBMITTED] = (token, run_ids)
        st.session_state[ui.FOCUS_RUN] = run_ids[0]
        st.session_state.pop(PLAN, None)
        st.rerun()


def _show_submitted(run_ids: list[str]) -> None:
    count = len(run_ids)
    st.success(
        f"Submitted as {count} run{'s' if count != 1 else ''}. It runs in the background: "
        "you can leave this page and come back later."
    )
    st.code("\n".join(run_ids), language=None)
    st.page_link(
        ui.PAGE_RUNS, label="Follow progress on the Runs page", icon=":material/arrow_forward:"
    )
    st.caption("To send another file, upload it above.")


def main() -> None:
    user = ui.require_user()
    st.title("New batch")
    st.caption(
        "Upload a lead list, check the columns, and see what it may cost before anything is spent."
    )
    st.subheader("1. Upload a lead list")
    uploaded = st.file_uploader(
        "Lead list (CSV or Excel)",
        type=UPLOAD_TYPES,
        key=UPLOAD,
        help="CSV separated by commas, semicolons, tabs or pipes, in any common encoding, or "
        "an Excel .xlsx workbook. The first row must hold the column names.",
    )
    if uploaded is None:
        st.info(
            "Export your leads from your CRM or prospecting tool with names and companies, "
            "LinkedIn profiles or emails, then drop the file here."
        )
        return
    token, table, error = _load(user, uploaded)
    if table is None:
        st.error(error)
        return
    _show_file(uploaded.name, table)
    mapping = _mapping_widgets(table)
    if not any(mapping.values()):
        st.error(NO_COLUMNS)
        return
    for warning in mapping_warnings(table, mapping):
        st.warning(warning)
    if not _can_enrich(mapping):
        return
    submitted = st.session_state.get(SUBMITTED)
    if submitted and submitted[0] == token:
        # Not the pre-flight again: recomputed now it would count this batch's own
        # results as "already known" and confuse what was just spent.
        st.subheader("3. Submitted")
        _show_submitted(submitted[1])
        return
    plan, rows, pf = _plan(user, token, table, mapping)
    _show_preflight(pf)
    _budget_and_submit(user, token, table, mapping, plan, rows, pf)


ui.guarded("new batch", main)
