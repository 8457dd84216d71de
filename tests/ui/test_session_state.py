"""Pages keep only UI state in the session: core data comes from phone_core on each rerun.

A parsed table, mapped rows, a pre-flight, a run or file bytes kept in st.session_state
would be a second copy of core data, per session and unbounded; this drives the pages and
checks every value the session holds.
"""

from __future__ import annotations

from collections.abc import Callable

from streamlit.testing.v1 import AppTest

from phone_core import service
from phone_core.runtime import Runtime
from tests.conftest import grant, wait_finished
from tests.ui.helpers import PREFLIGHT_HEADER, PREFLIGHT_ROWS, csv_bytes, upload
from tests.ui.test_runs import load_directory

# Streamlit's own value of a file_uploader widget (an UploadedFile) is not page state.
UPLOADERS = ("nb_upload", "ref_upload")
# Nor is the row selection of the Runs page's batches table (row positions only).
SELECTIONS = ("runs_table_",)


def is_ui_state(value: object) -> bool:
    if isinstance(value, list | tuple):
        return all(is_ui_state(v) for v in value)
    return value is None or isinstance(value, str | int | float | bool)


def core_data_in(at: AppTest) -> dict[str, str]:
    return {
        key: type(value).__name__
        for key, value in at.session_state.items()
        if key not in UPLOADERS and not is_ui_state(value) and not _selection(key, value)
    }


def _selection(key: str, value: object) -> bool:
    """A table's row selection: Streamlit's widget value, holding row positions only."""
    if not key.startswith(SELECTIONS):
        return False
    selection = getattr(value, "selection", None)
    return selection is not None and all(
        is_ui_state(list(getattr(selection, part, []) or []))
        for part in ("rows", "columns", "cells")
    )


def test_is_ui_state() -> None:
    assert is_ui_state(("token", ["run-1", "run-2"], 3, 1.5, True, None))
    assert not is_ui_state(b"bytes")
    assert not is_ui_state({"first_name": "Ann"})
    assert not is_ui_state([{"first_name": "Ann"}])
    assert not is_ui_state(object())


def test_new_batch_and_runs_keep_only_ui_state(rt: Runtime, app: Callable[..., AppTest]) -> None:
    grant(rt, "alice", 100)
    load_directory(rt)
    at = upload(app("alice").run(), "ten.csv", csv_bytes(PREFLIGHT_HEADER, PREFLIGHT_ROWS))
    assert "Rows in the file" in {m.label for m in at.main.metric}  # reached the pre-flight
    assert core_data_in(at) == {}
    at.selectbox(key="nb_col_Email").set_value("-").run()
    at.text_input(key="nb_label").set_value("October leads").run()
    assert core_data_in(at) == {}
    at.button(key="nb_submit").click().run()
    assert not at.exception
    assert core_data_in(at) == {}
    run_id = service.list_runs(rt, "alice")[0].run_id
    wait_finished(rt, "alice", run_id)
    at.switch_page("app_pages/runs.py").run()
    assert [t.value for t in at.title] == ["Runs"]
    at.selectbox(key="runs_row_filter").set_value("With a phone").run()
    assert not at.exception
    assert core_data_in(at) == {}


def test_reference_data_keeps_only_ui_state(rt: Runtime, app: Callable[..., AppTest]) -> None:
    at = app("admin", "admin").run()
    at.switch_page("app_pages/reference_data.py").run()
    data = csv_bytes(
        ["First Name", "Last Name", "Company", "Phone"], [["Ann", "Lee", "Acme", "+14155550100"]]
    )
    at = upload(at, "crm.csv", data, key="ref_upload")
    assert at.selectbox(key="ref_map_phone").value == "Phone"
    assert core_data_in(at) == {}
    at.checkbox(key="ref_confirm").check().run()
    at.button(key="ref_load").click().run()
    assert not at.exception
    assert core_data_in(at) == {}
