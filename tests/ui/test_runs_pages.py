"""The Runs page pages in the DB (issue 11, item 5): page 2 of the batches shows the next
ones with the right total, the filters combine, and the opened batch's rows come a page
at a time with captions that add up. The fast tier: the page script in AppTest over a
real SQLite state DB (the history of tests/core/test_batch_pages.py), no DBOS, no S3."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from streamlit.testing.v1 import AppTest

from phone_core import bootstrap
from phone_core.runtime import Runtime
from tests.core.test_batch_pages import seed_history
from tests.ui.helpers import ROOT
from ui import batch_panel, run_results, run_view

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture
def runs_page(memory_rt: Runtime) -> Iterator[AppTest]:
    with memory_rt.db.begin() as conn:
        seed_history(conn)
    setattr(sys, bootstrap._GUARD_ATTR, memory_rt)  # ui_api's runtime
    at = AppTest.from_file(str(ROOT / "app_pages" / "runs.py"), default_timeout=60)
    for key, value in (
        ("authentication_status", True), ("username", "ann"), ("name", "Ann"),
        ("roles", ["user"]), ("signed_in_at", 0.0),
    ):  # fmt: skip
        at.session_state[key] = value
    yield at
    delattr(sys, bootstrap._GUARD_ATTR)


def captions(at: AppTest) -> list[str]:
    return [str(c.value) for c in at.caption]


def batch_names(at: AppTest) -> list[str]:
    return list(at.dataframe[0].value["Batch"])


def test_page_two_shows_the_next_batches_and_filters_combine(runs_page: AppTest) -> None:
    at = runs_page.run()
    assert not at.exception and not at.error
    assert "Batches 1–25 of 36. Newest first." in " ".join(captions(at))
    first = batch_names(at)
    assert first[0] == "live leads.csv" and len(first) == 25
    at.number_input(key=run_view.PAGE).set_value(2).run()
    second = batch_names(at)
    assert len(second) == 11 and not set(second) & set(first)
    assert "Batches 26–36 of 36." in " ".join(captions(at))
    assert second[-1] == "Old list.csv"  # the oldest last
    # State and search together: the completed batches named like "leads-0".
    at.selectbox(key=run_view.STATE_FILTER).set_value("Completed")
    at.text_input(key=run_view.SEARCH).set_value("leads-0").run()
    assert batch_names(at) == [f"leads-{k:02d}.csv" for k in range(9, -1, -1)]
    assert "Batches 1–10 of 10." in " ".join(captions(at))  # page 2 no longer exists
    at.selectbox(key=run_view.STATE_FILTER).set_value("Stopped early")
    at.text_input(key=run_view.SEARCH).set_value("").run()
    assert batch_names(at) == ["capped.csv"]


def test_the_opened_batch_rows_come_a_page_at_a_time(
    runs_page: AppTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch_panel, "ROWS_PER_PAGE", 5)
    runs_page.query_params["batch"] = "parts"
    at = runs_page.run()
    assert not at.exception and not at.error
    rows = at.dataframe[-1].value
    assert list(rows["Row"]) == [1, 2, 3, 4, 5]
    assert "12 of 12 rows. Page 1 of 3: rows 1–5 of these." in captions(at)
    at.number_input(key=batch_panel.ROW_PAGE).set_value(3).run()
    assert list(at.dataframe[-1].value["Row"]) == [11, 12]
    assert "12 of 12 rows. Page 3 of 3: rows 11–12 of these." in captions(at)
    # A filter with fewer rows: its last page, and the counts still add up.
    at.selectbox(key=run_results.ROW_FILTER).set_value("Not processed or error").run()
    shown = at.dataframe[-1].value
    assert set(shown["Status"]) == {"Error"} and len(shown) == 2
    assert "2 of 12 rows." in captions(at)
