"""A batch's results: the rows table, outcomes by source, the merged files by version,
and the re-run of its failed rows (in the same batch: a new version of its files)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from phone_core import ui_api, ui_batches
from phone_core.errors import ExportError, PhoneError
from phone_core.models import OUTPUT_FILES, Batch, OutputFile, RecordOutcome, RecordStatus
from ui import common, labels

# Widget keys.
ROW_FILTER = "runs_row_filter"
RESULTS = "runs_results"
RERUN_CREDITS = "runs_rerun_credits"
RERUN = "runs_rerun"
DOWNLOAD_PREFIX = "runs_download_"
VERSION = "runs_version"
# Page state.
RERUN_FOR = "runs_rerun_for"  # batch (and version) the re-run budget default was set for

NO_SOURCE = "(none)"
OUTCOME_COLORS = {  # by the labels in labels.STATUS_LABELS
    "Found": "#2e7d32",
    "Already known (free)": "#66bb6a",
    "Duplicate (free)": "#a5d6a7",
    "Not found": "#9e9e9e",
    "Skipped (free)": "#cfd8dc",
    "Not processed": "#ffb300",
    "Error": "#d32f2f",
    "Withheld: do-not-call (free)": "#6a1b9a",
    "Waiting": "#90caf9",
}


def _phone(o: RecordOutcome) -> str:
    return o.phone if o.status and o.status.carries_phone else ""


ROW_FILTERS = {  # label -> ui_batches.ROW_FILTERS (applied in the DB, page by page)
    "All rows": "all",
    "With a phone": "phone",
    "Without a phone": "no_phone",
    "Not processed or error": "failed",
}


RESULT_HEADERS = (
    "Row", "ID", "First name", "Last name", "Company", "Website", "LinkedIn", "Phone",
    "Do-not-call", "Status", "Source", "Credits", "Detail",
)  # fmt: skip


def _outcomes_frame(items: list[RecordOutcome]) -> pd.DataFrame:
    return pd.DataFrame(
        columns=list(RESULT_HEADERS),
        data=[
            {
                "Row": o.idx + 1,
                "ID": o.person.id,
                "First name": o.person.first_name,
                "Last name": o.person.last_name,
                "Company": o.person.company_name,
                "Website": o.person.company_url,
                "LinkedIn": o.person.linkedin,
                "Phone": _phone(o),
                "Do-not-call": o.dnc_list,  # the lists its phone or person is on
                "Status": labels.status_label(o.status),
                "Source": o.source,
                "Credits": o.credits_charged,
                "Detail": labels.detail_label(o.detail) if o.detail else "",
            }
            for o in items
        ],
    )


def _chart(tally: dict[tuple[str, str | None], int]) -> None:
    counts: dict[str, dict[str, int]] = {}
    for (source, status), n in tally.items():
        label = labels.status_label(RecordStatus(status) if status else None)
        per_source = counts.setdefault(source or NO_SOURCE, {})
        per_source[label] = per_source.get(label, 0) + n
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


def _fetcher(user: str, batch_id: str, name: str, version: int, admin: bool) -> Callable[[], bytes]:
    def fetch() -> bytes:  # runs when the button is clicked, outside the script thread
        try:
            return ui_batches.download_batch(user, batch_id, name, version, admin=admin)
        except PhoneError as exc:
            raise RuntimeError(common.explain(exc)) from None
        except Exception as exc:
            common.log_unexpected(f"download {name}", exc)
            raise RuntimeError("the file could not be read; see the server log") from None

    return fetch


def _version(batch: Batch) -> int:
    """The version picked (the newest by default): older ones stay downloadable."""
    newest = batch.versions[-1].version
    if len(batch.versions) == 1:
        return newest
    by_number = {v.version: v for v in batch.versions}
    if st.session_state.get(VERSION) not in by_number:
        st.session_state[VERSION] = newest
    return int(
        st.selectbox(
            "Version",
            list(reversed(by_number)),
            key=VERSION,
            format_func=lambda n: (
                f"Version {n}: {by_number[n].note}, "
                f"{labels.when(by_number[n].created_at)} UTC" + (" (newest)" if n == newest else "")
            ),
            help="A re-run writes a new version with its rows updated; older versions "
            "stay as they were.",
        )
    )


def _downloads(user: str, batch: Batch, admin: bool) -> None:
    st.markdown("#### Downloads")
    if not batch.versions:
        st.caption("The files are written when every part of the upload has finished.")
        return
    version = _version(batch)
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", batch.label.rsplit(".", 1)[0]).strip("-")[:60]
    stem = f"{stem or 'batch'}-{batch.batch_id[:8]}" + (f"-v{version}" if version > 1 else "")
    st.caption(
        f"One file each for the whole upload ({labels.count(batch.counts.total, 'row')}, "
        "in the upload's order, each row's newest outcome)."
    )
    # The spreadsheet files in one row, the programs' files under them: five buttons in
    # one row would be squeezed.
    exports = [spec for spec in OUTPUT_FILES.values() if not spec.contract]
    machine = [spec for spec in OUTPUT_FILES.values() if spec.contract]
    width = max(len(exports), len(machine))
    for specs in (exports, machine):
        for col, spec in zip(st.columns(width)[: len(specs)], specs, strict=True):
            _download(col, user, batch, version, admin, stem, spec)
        if specs is exports:
            st.caption(
                "Excel set to another language (German, French, ...) shows the enriched CSV "
                "in one column or with odd characters? Download the Excel-friendly CSV."
            )


def _download(
    col: DeltaGenerator,
    user: str,
    batch: Batch,
    version: int,
    admin: bool,
    stem: str,
    spec: OutputFile,
) -> None:
    base, suffix = spec.name.rsplit(".", 1)
    if not spec.contract:
        # An export is built on its own and may be impossible (e.g. too many columns
        # for Excel): find out now and say so, instead of a button that does nothing.
        problem = export_problem(user, batch.batch_id, spec.name, version, admin)
        if problem:
            col.warning(problem, icon=":material/warning:")
            return
    col.download_button(
        spec.label,
        data=_fetcher(user, batch.batch_id, spec.name, version, admin),  # on click only
        file_name=f"{stem}-{base}.{suffix}",
        mime=spec.mime,
        key=DOWNLOAD_PREFIX + spec.name,
        help=spec.description,
        on_click="ignore",
        icon=":material/download:",
    )


@st.cache_data(ttl=3600, max_entries=1000, show_spinner=False)
def export_problem(user: str, batch_id: str, name: str, version: int, admin: bool) -> str:
    """Why export ``name`` of version ``version`` cannot be made ('' when it can). Asked
    once per user, batch, version and file: a version's files never change once written,
    so a rerun does not read the file again (the button fetches it when clicked)."""
    try:
        ui_batches.download_batch(user, batch_id, name, version, admin=admin)
    except ExportError as exc:
        return common.explain(exc)
    return ""


def _rerun(user: str, batch: Batch) -> None:
    if batch.owner != user:
        return
    count = ui_batches.batch_rerunnable_count(user, batch.batch_id)
    if count == 0:
        return
    st.markdown("#### Re-run failed / not processed rows")
    worst = count * ui_batches.per_record_worst_case()
    available = ui_api.credit_summary(user).available
    set_for = f"{batch.batch_id}/{len(batch.versions)}"
    if st.session_state.get(RERUN_FOR) != set_for:
        st.session_state[RERUN_CREDITS] = max(1, min(worst, available))
        st.session_state[RERUN_FOR] = set_for
    st.caption(
        f"{labels.count(count, 'row')} ended in error or {'was' if count == 1 else 'were'} "
        f"not processed. A re-run sends just {'that row' if count == 1 else 'those rows'} "
        f"(worst case {labels.count(worst, 'credit')}; you have {available:,} available) "
        "and, when "
        "it ends, updates this batch's files as a new version."
    )
    left, right = st.columns([1, 2])
    budget = int(
        left.number_input("Maximum credits for the re-run", min_value=1, step=1, key=RERUN_CREDITS)
    )
    right.write("")
    if right.button(f"Re-run {labels.count(count, 'row')}", key=RERUN, disabled=available < 1):
        ui_batches.rerun_batch(user, batch.batch_id, budget)
        st.rerun()
    if available < 1:
        st.caption("You have no credits available: ask an administrator for more.")


def results_table(items: list[RecordOutcome]) -> None:
    st.dataframe(
        _outcomes_frame(items),
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


def details(user: str, admin: bool, batch: Batch) -> None:
    """What is shown once a batch has finished, below its rows: outcomes by source,
    downloads and the re-run."""
    st.markdown("#### Outcomes by source")
    _chart(ui_batches.batch_source_tally(user, batch.batch_id, admin=admin))
    _downloads(user, batch, admin)
    _rerun(user, batch)
