"""Runs page: the batches, live state, detail, downloads, cancel, re-run, and who sees what."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from phone_core import service
from phone_core.inline import InlineRunQueue
from phone_core.runtime import Runtime
from phone_core.sources import directory
from tests.conftest import grant, wait_finished
from tests.ui.helpers import PREFLIGHT_HEADER, PREFLIGHT_ROWS, csv_bytes, messages, metrics, upload

KEYS = ("id", "first_name", "last_name", "company_name", "company_url", "email")


def mapped_rows() -> list[dict[str, str]]:
    return [
        dict(zip(KEYS, ["", *row], strict=True)) for row in PREFLIGHT_ROWS
    ]  # id left empty: generated


def submit(rt: Runtime, user: str, max_credits: int = 10, label: str = "ten.csv") -> str:
    source = [dict(zip(PREFLIGHT_HEADER, row, strict=True)) for row in PREFLIGHT_ROWS]
    accepted = service.submit_upload(
        rt, user, mapped_rows(), max_credits, source_rows=source, label=label
    )
    return accepted[0].run_id


def load_directory(rt: Runtime) -> None:
    """Phones for every enrichable person of PREFLIGHT_ROWS but Finn Ng."""
    rows = [
        {"first_name": "Ann", "last_name": "Lee", "company_url": "acme.com"},
        {"first_name": "Bob", "last_name": "Ray", "company_url": "globex.com"},
        {"first_name": "Cat", "last_name": "Fox", "company_name": "Initech"},
        {"email": "dan@umbrella.com"},
        {"first_name": "Gus", "last_name": "Poe", "company_url": "wayne.com"},
    ]
    for i, row in enumerate(rows):
        row["phone"] = f"+1415555{i:04d}"
    directory.load_rows(rt.db, rows, file_name="dir.csv", loaded_by="test")


def frame(at: AppTest, column: str) -> pd.DataFrame:
    """The first table on the page with ``column`` (the batches have "Batch id", the
    parts "Part", the results "Phone")."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


@pytest.fixture
def runs_page(app: Callable[..., AppTest]) -> Callable[..., AppTest]:
    def open_page(user: str = "alice", role: str = "user") -> AppTest:
        at = app(user, role).run()
        at.switch_page("app_pages/runs.py").run()
        assert not at.exception
        assert [t.value for t in at.title] == ["Runs"]
        return at

    return open_page


def test_submit_then_the_run_is_listed_and_finishes(
    rt: Runtime, app: Callable[..., AppTest]
) -> None:
    grant(rt, "alice", 100)
    load_directory(rt)
    at = app("alice").run()
    at = upload(at, "ten.csv", csv_bytes(PREFLIGHT_HEADER, PREFLIGHT_ROWS))
    at.button(key="nb_submit").click().run()
    run_id = service.list_runs(rt, "alice")[0].run_id
    at.switch_page("app_pages/runs.py").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["Batch id"]) == [run_id]  # one run: the batch is named by it
    assert at.query_params["batch"] == run_id  # the batch just submitted is open
    wait_finished(rt, "alice", run_id)
    at.run()
    table = at.dataframe[0].value
    row = table.iloc[0]
    assert row["State"] == "Completed" and row["Progress"] == 1.0
    results = service.download(rt, "alice", run_id, "results.csv").decode().splitlines()[1:]
    with_phone = sum(1 for line in results if line.endswith(",true"))
    assert with_phone == 7  # 5 people found, and 2 duplicate rows of them
    assert (row["Rows"], row["Rows with a phone"]) == (10, with_phone)  # reconciles
    rate = round(100 * service.get_run(rt, "alice", run_id).counts.found_rate)
    assert (row["Credits spent"], row["Budget"], row["Found rate"]) == (5, 6, rate)
    counts = "Found **5** · Already known **0** · Duplicates **2** · Not found **1** · "
    assert any(m.startswith(counts) for m in messages(at, "markdown"))
    shown = metrics(at)
    assert shown["Phones found: people · rows"] == "5 · 7" and shown["Credits spent"] == "5 of 6"
    results = frame(at, "Phone")
    assert len(results) == 10
    assert results.iloc[0]["Phone"] == "+14155550000" and results.iloc[0]["Status"] == "Found"
    assert results.iloc[4]["Status"] == "Skipped (free)"
    buttons = at.get("download_button")
    assert [b.label for b in buttons] == [
        "Enriched CSV", "Enriched Excel", "Excel-friendly CSV",  # spreadsheets first,
        "results.csv (for programs)", "credits.csv (for programs)",  # then programs
    ]  # fmt: skip
    excel = next(b for b in buttons if b.label == "Excel-friendly CSV")
    assert "language other than English" in excel.proto.help
    assert any("Download the Excel-friendly CSV" in c for c in messages(at, "caption"))
    assert len(at.get("vega_lite_chart")) == 1  # outcomes by source


def test_filtering_the_result_rows(rt: Runtime, runs_page: Callable[..., AppTest]) -> None:
    grant(rt, "alice", 100)
    load_directory(rt)
    wait_finished(rt, "alice", submit(rt, "alice"))
    at = runs_page()
    at.selectbox(key="runs_row_filter").set_value("With a phone").run()
    assert len(frame(at, "Phone")) == 7  # 5 found + 2 duplicates of found people
    at.selectbox(key="runs_row_filter").set_value("Without a phone").run()
    assert len(frame(at, "Phone")) == 3


def test_a_user_never_sees_another_users_runs(
    rt: Runtime, runs_page: Callable[..., AppTest]
) -> None:
    grant(rt, "alice", 100)
    run_id = submit(rt, "alice", label="alice-secret.csv")
    wait_finished(rt, "alice", run_id)
    at = runs_page("bob")
    assert messages(at, "info") == [
        "No batches yet. Upload a lead list on the New batch page to start one."
    ]
    assert len(at.dataframe) == 0
    assert all("alice-secret" not in m for m in messages(at, "markdown"))
    # Even a run id typed into the page state, or a batch id into the URL, does not open it.
    at.session_state["focus_run_id"] = run_id
    at.query_params["batch"] = run_id
    at.run()
    assert len(at.dataframe) == 0 and not at.exception


def test_admins_see_everyones_runs_and_filter_by_user(
    rt: Runtime, runs_page: Callable[..., AppTest]
) -> None:
    grant(rt, "alice", 100)
    grant(rt, "bob", 100)
    for user in ("alice", "bob"):
        wait_finished(rt, user, submit(rt, user, label=f"{user}.csv"))
    at = runs_page("admin", "admin")
    table = at.dataframe[0].value
    assert sorted(table["Owner"]) == ["alice", "bob"]
    at.selectbox(key="runs_owner").set_value("bob").run()
    table = at.dataframe[0].value
    assert list(table["Owner"]) == ["bob"] and list(table["Batch"]) == ["bob.csv"]
    assert all(b.key != "runs_rerun" for b in at.button)  # re-run is the owner's call


def test_cancel_a_queued_run(
    rt: Runtime, runs_page: Callable[..., AppTest], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rt, "queue", InlineRunQueue(rt))  # never drained: stays queued
    grant(rt, "alice", 100)
    run_id = submit(rt, "alice")
    at = runs_page()
    assert at.dataframe[0].value.iloc[0]["State"] == "Queued"
    assert any("updates by itself" in c for c in messages(at, "caption"))
    at.button(key="runs_cancel").click().run()
    assert not at.exception
    assert service.get_run(rt, "alice", run_id).cancel_requested
    assert any(m.startswith("Cancel requested") for m in messages(at, "info"))
    assert len(at.get("download_button")) == 0  # outputs come when the run ends


def test_rerun_the_rows_not_processed(rt: Runtime, runs_page: Callable[..., AppTest]) -> None:
    grant(rt, "alice", 100)
    load_directory(rt)
    run_id = submit(rt, "alice", max_credits=2)
    run = wait_finished(rt, "alice", run_id)
    assert run.state.value == "credit_limit_reached"
    left = service.rerunnable_count(rt, "alice", run_id)
    assert left > 0
    at = runs_page()
    assert at.dataframe[0].value.iloc[0]["State"] == "Stopped: credit limit reached"
    assert at.button(key="runs_rerun").label == f"Re-run {left} rows"
    assert at.number_input(key="runs_rerun_credits").value == left  # min(worst, available)
    at.button(key="runs_rerun").click().run()
    assert not at.exception
    runs = service.list_runs(rt, "alice")
    assert len(runs) == 2
    child = next(r for r in runs if r.run_id != run_id)
    assert child.parent_run_id == run_id and child.counts.total == left
    assert at.query_params["batch"] == run_id  # the same batch stays open
    assert len(at.dataframe[0].value) == 1  # a re-run is part of its batch, not a new line
    wait_finished(rt, "alice", child.run_id)


def test_an_export_that_cannot_be_built_is_said_and_the_other_is_offered(
    rt: Runtime, runs_page: Callable[..., AppTest]
) -> None:
    grant(rt, "alice", 10)
    wide = {f"c{i}": "x" for i in range(16_380)}  # more columns than Excel allows
    row = {"first_name": "Ann", "last_name": "Lee", "company_url": "acme.com"}
    (acc,) = service.submit_upload(rt, "alice", [row], 5, source_rows=[wide], label="wide.csv")
    wait_finished(rt, "alice", acc.run_id)
    at = runs_page()
    labels = {b.label for b in at.get("download_button")}
    assert "Enriched CSV" in labels and "Enriched Excel" not in labels
    assert any("Excel allows 16,384" in w for w in messages(at, "warning"))


def test_a_run_stopped_by_its_cap_says_so_honestly(
    rt: Runtime, runs_page: Callable[..., AppTest]
) -> None:
    load_directory(rt)
    grant(rt, "alice", 100)
    run_id = submit(rt, "alice", max_credits=2)
    run = wait_finished(rt, "alice", run_id)
    assert run.state.value == "credit_limit_reached"
    c = run.counts
    assert c.not_processed > 0
    at = runs_page()
    table = at.dataframe[0].value.iloc[0]
    assert table["Progress"] == c.handled / c.total < 1.0  # not a full bar
    bar = at.get("progress")[0]
    assert f"{c.handled} of 10 rows done, {c.not_processed} not processed" in str(bar.proto.text)
    assert any("credit cap was reached" in w for w in messages(at, "warning"))
    assert metrics(at)["Found rate"] == "100%"  # of the people looked up: said in its help
