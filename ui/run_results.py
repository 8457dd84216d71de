"""A finished run's results: the rows, outcomes by source, downloads, and the re-run."""

from __future__ import annotations

import re
from collections.abc import Callable

import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from phone_core import ui_api
from phone_core.errors import ExportError, PhoneError
from phone_core.models import OUTPUT_FILES, OutputFile, RecordOutcome, RecordStatus, Run
from ui import common, labels

# Widget keys.
ROW_FILTER = "runs_row_filter"
RESULTS = "runs_results"
RERUN_CREDITS = "runs_rerun_credits"
RERUN = "runs_rerun"
DOWNLOAD_PREFIX = "runs_download_"
# Page state.
RERUN_FOR = "runs_rerun_for"  # run id the re-run budget default was set for

NO_SOURCE = "(none)"
OUTCOME_COLORS = {  # by the labels in labels.STATUS_LABELS
    "Found": "#2e7d32",
    "Already known (free)": "#66bb6a",
    "Duplicate (free)": "#a5d6a7",
    "Not found": "#9e9e9e",
    "Skipped (free)": "#cfd8dc",
    "Not processed": "#ffb300",
    "Error": "#d32f2f",
    "Waiting": "#90caf9",
}


def _phone(o: RecordOutcome) -> str:
    return o.phone if o.status and o.status.carries_phone else ""


ROW_FILTERS: dict[str, Callable[[RecordOutcome], bool]] = {
    "All rows": lambda o: True,
    "With a phone": lambda o: bool(_phone(o)),
    "Without a phone": lambda o: not _phone(o),
    "Not processed or error": lambda o: (
        o.status in (RecordStatus.NOT_PROCESSED, RecordStatus.ERROR, None)
    ),
}


def _outcomes_frame(items: list[RecordOutcome]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Row": o.idx + 1,
                "ID": o.person.id,
                "First name": o.person.first_name,
                "Last name": o.person.last_name,
                "Company": o.person.company_name,
                "Website": o.person.company_url,
                "LinkedIn": o.person.linkedin,
                "Phone": _phone(o),
                "Status": labels.status_label(o.status),
                "Source": o.source,
                "Credits": o.credits_charged,
                "Detail": labels.detail_label(o.detail) if o.detail else "",
            }
            for o in items
        ]
    )


def _chart(items: list[RecordOutcome]) -> None:
    counts: dict[str, dict[str, int]] = {}
    for o in items:
        status = labels.status_label(o.status)
        per_source = counts.setdefault(o.source or NO_SOURCE, {})
        per_source[status] = per_source.get(status, 0) + 1
    outcomes = [label for label in OUTCOME_COLORS if any(label in c for c in counts.values())]
    wide = pd.DataFrame(
        [[counts[src].get(label, 0) for label in outcomes] for src in sorted(counts)],
        index=pd.Index(sorted(counts), name="Source"),
        columns=outcomes,
    )
    st.bar_chart(
        wide,
        color=[OUTCOME_COLORS[label] for label in outcomes],
        horizontal=True,
        height=90 + 45 * len(wide),
        x_label="Source",
        y_label="Rows",
    )
    st.caption(
        f"'{NO_SOURCE}': rows without a source: skipped, not processed, or no source had a phone."
    )


def _fetcher(user: str, run_id: str, name: str, admin: bool) -> Callable[[], bytes]:
    def fetch() -> bytes:  # runs when the button is clicked, outside the script thread
        try:
            return ui_api.download(user, run_id, name, admin=admin)
        except PhoneError as exc:
            raise RuntimeError(common.explain(exc)) from None
        except Exception as exc:
            common.log_unexpected(f"download {name}", exc)
            raise RuntimeError("the file could not be read; see the server log") from None

    return fetch


def _downloads(user: str, run: Run, admin: bool) -> None:
    st.markdown("#### Downloads")
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", run.label.rsplit(".", 1)[0]).strip("-")[:60]
    stem = f"{stem or 'run'}-{run.run_id[:8]}"
    # The spreadsheet files in one row, the programs' files under them: five buttons in
    # one row would be squeezed.
    exports = [spec for spec in OUTPUT_FILES.values() if not spec.contract]
    machine = [spec for spec in OUTPUT_FILES.values() if spec.contract]
    width = max(len(exports), len(machine))
    for specs in (exports, machine):
        for col, spec in zip(st.columns(width)[: len(specs)], specs, strict=True):
            _download(col, user, run, admin, stem, spec)
        if specs is exports:
            st.caption(
                "Excel set to another language (German, French, ...) shows the enriched CSV "
                "in one column or with odd characters? Download the Excel-friendly CSV."
            )


def _download(
    col: DeltaGenerator, user: str, run: Run, admin: bool, stem: str, spec: OutputFile
) -> None:
    base, suffix = spec.name.rsplit(".", 1)
    data: bytes | Callable[[], bytes] = _fetcher(user, run.run_id, spec.name, admin)
    if not spec.contract:
        # An export is built on its own and may be impossible (e.g. too many columns
        # for Excel): find out now and say so, instead of a button that does nothing.
        try:
            data = ui_api.download(user, run.run_id, spec.name, admin=admin)
        except ExportError as exc:
            col.warning(common.explain(exc), icon=":material/warning:")
            return
    col.download_button(
        spec.label,
        data=data,
        file_name=f"{stem}-{base}.{suffix}",
        mime=spec.mime,
        key=DOWNLOAD_PREFIX + spec.name,
        help=spec.description,
        on_click="ignore",
        icon=":material/download:",
    )


def _rerun(user: str, run: Run) -> None:
    if run.owner != user:
        return
    count = ui_api.rerunnable_count(user, run.run_id)
    if count == 0:
        return
    st.markdown("#### Re-run failed / not processed rows")
    worst = count * ui_api.per_record_worst_case()
    available = ui_api.credit_summary(user).available
    if st.session_state.get(RERUN_FOR) != run.run_id:
        st.session_state[RERUN_CREDITS] = max(1, min(worst, available))
        st.session_state[RERUN_FOR] = run.run_id
    st.caption(
        f"{count:,} rows ended in error or were not processed. A new run sends just those "
        f"rows (worst case {worst:,} credits; you have {available:,} available)."
    )
    left, right = st.columns([1, 2])
    budget = int(
        left.number_input("Maximum credits for the re-run", min_value=1, step=1, key=RERUN_CREDITS)
    )
    right.write("")
    if right.button(f"Re-run {count:,} rows", key=RERUN, disabled=available < 1):
        accepted = ui_api.rerun(user, run.run_id, budget)
        st.session_state[common.FOCUS_RUN] = accepted.run_id
        st.rerun()
    if available < 1:
        st.caption("You have no credits available: ask an administrator for more.")


def details(user: str, admin: bool, run: Run) -> None:
    """Everything shown once a run has finished."""
    items = ui_api.run_outcomes(user, run.run_id, admin=admin)
    st.markdown("#### Results")
    choice = st.selectbox("Show", list(ROW_FILTERS), key=ROW_FILTER)
    shown = [o for o in items if ROW_FILTERS[choice](o)]
    st.dataframe(
        _outcomes_frame(shown),
        hide_index=True,
        width="stretch",
        height=420,
        key=RESULTS,
        column_config={
            "Row": st.column_config.NumberColumn("Row", format="%d", width="small"),
            "Phone": st.column_config.TextColumn("Phone", help="E.164 format"),
            "Credits": st.column_config.NumberColumn("Credits", format="%d", width="small"),
            "LinkedIn": st.column_config.TextColumn("LinkedIn", help="Profile slug"),
        },
    )
    st.caption(f"{len(shown):,} of {len(items):,} rows.")
    st.markdown("#### Outcomes by source")
    _chart(items)
    _downloads(user, run, admin)
    _rerun(user, run)
