"""Runs page, issue 10: one line per upload whatever its size, filter by state, search by
name, pages, the opened batch kept in the URL, live rows while it runs, and each part's
own numbers (defect 5: no '0 of 0', no whole budget per part)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from phone_core import batches, engine, service
from phone_core.inline import InlineRunQueue
from phone_core.runtime import Runtime
from tests.conftest import grant
from tests.ui.helpers import messages, metrics
from tests.ui.test_runs import load_directory, mapped_rows, submit


def frame(at: AppTest, column: str) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if column in d.value.columns)


@pytest.fixture
def queued(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    """Runs stay queued (the inline queue is never drained); uploads split every 4 rows."""
    monkeypatch.setattr(rt, "queue", InlineRunQueue(rt))
    monkeypatch.setattr(service, "MAX_BATCH", 4)
    grant(rt, "alice", 1000)
    return rt


def open_runs(app: Callable[..., AppTest], batch: str | None = None) -> AppTest:
    at = app("alice").run()
    if batch is not None:
        at.query_params["batch"] = batch
    at.switch_page("app_pages/runs.py").run()
    assert not at.exception
    return at


def test_a_split_upload_is_one_line_and_its_parts_wait_their_turn(
    queued: Runtime, app: Callable[..., AppTest]
) -> None:
    submit(queued, "alice", max_credits=10, label="big.csv")  # 10 rows: 3 parts
    at = open_runs(app)
    table = frame(at, "Batch id")
    assert len(table) == 1
    row = table.iloc[0]
    assert (row["Batch"], row["Rows"], row["Parts"], row["Budget"]) == ("big.csv", 10, 3, 10)
    parts = frame(at, "Part")
    assert list(parts["State"]) == ["Queued", "Waiting for part 1", "Waiting for part 2"]
    assert "Max credits" not in parts.columns  # the budget is the batch's, shown once
    assert metrics(at)["Credits spent"] == "0 of 10"  # not "0 of 0"


def test_rows_appear_while_the_batch_runs(queued: Runtime, app: Callable[..., AppTest]) -> None:
    load_directory(queued)
    first = submit(queued, "alice", max_credits=10, label="big.csv")
    at = open_runs(app)
    assert len(frame(at, "Phone")) == 0
    asyncio.run(engine.process_run(queued, first))  # the first part (rows 1-4) settles
    at.run()
    assert not at.exception
    results = frame(at, "Phone")
    assert list(results["Row"]) == [1, 2, 3, 4] and results.iloc[0]["Status"] == "Found"
    assert any("Rows appear here as they are processed" in c for c in messages(at, "caption"))
    bars = at.get("progress")
    assert len(bars) == 1  # the progress text once
    text = str(bars[0].proto.text)
    assert text.startswith("Running: 4 of 10 rows done")
    assert all(text not in m for m in messages(at, "markdown") + messages(at, "caption"))
    assert frame(at, "Batch id").iloc[0]["State"] == "Running"
    assert len(at.get("download_button")) == 0  # the files come when every part is done


def test_the_opened_batch_stays_across_reloads(
    queued: Runtime, app: Callable[..., AppTest]
) -> None:
    older = submit(queued, "alice", label="older.csv")
    submit(queued, "alice", label="newer.csv")
    at = open_runs(app)
    assert any(m == "### newer.csv" for m in messages(at, "markdown"))  # the newest by default
    older_batch = batches.batch_of_run(queued, "alice", older)
    at.query_params["batch"] = older_batch  # as a click on its row does
    at.run()
    assert any(m == "### older.csv" for m in messages(at, "markdown"))
    reloaded = open_runs(app, batch=older_batch)  # a reload: a new session, the same URL
    assert any(m == "### older.csv" for m in messages(reloaded, "markdown"))
    assert reloaded.query_params["batch"] == older_batch


def test_submitting_opens_the_batch_of_the_run(
    queued: Runtime, app: Callable[..., AppTest]
) -> None:
    accepted = service.submit_upload(queued, "alice", mapped_rows(), 10, label="big.csv")
    submit(queued, "alice", label="newer.csv")
    at = app("alice").run()
    at.session_state["focus_run_id"] = accepted[2].run_id  # the last part of the upload
    at.switch_page("app_pages/runs.py").run()
    assert any(m == "### big.csv" for m in messages(at, "markdown"))


def test_filter_by_state_search_by_name_and_pages(
    queued: Runtime, app: Callable[..., AppTest]
) -> None:
    for i in range(27):
        submit(queued, "alice", label=f"list-{i}.csv")
    at = open_runs(app)
    assert len(frame(at, "Batch id")) == 25
    assert any(c.startswith("Batches 1–25 of 27.") for c in messages(at, "caption"))
    at.number_input(key="runs_page_no").set_value(2).run()
    assert list(frame(at, "Batch id")["Batch"]) == ["list-1.csv", "list-0.csv"]
    at.text_input(key="runs_search").set_value("LIST-1").run()  # any case
    names = list(frame(at, "Batch id")["Batch"])
    assert sorted(names) == sorted(["list-1.csv"] + [f"list-1{i}.csv" for i in range(10)])
    at.selectbox(key="runs_state").set_value("Completed").run()
    assert "No batch matches this filter." in messages(at, "info")
    at.selectbox(key="runs_state").set_value("In progress").run()
    assert len(frame(at, "Batch id")) == 11
    assert not at.exception


def test_clicking_a_row_opens_its_batch(queued: Runtime, app: Callable[..., AppTest]) -> None:
    older = submit(queued, "alice", label="older.csv")
    submit(queued, "alice", label="newer.csv")
    at = open_runs(app)
    assert list(frame(at, "Batch id")["Batch"]) == ["newer.csv", "older.csv"]
    table = next(d for d in at.dataframe if "Batch id" in d.value.columns)
    assert table.key is not None
    # What a click on the second row's selector sends (AppTest writes selection state).
    at.session_state[table.key] = {"selection": {"rows": [1], "columns": [], "cells": []}}
    at.run()
    assert not at.exception
    assert at.query_params["batch"] == batches.batch_of_run(queued, "alice", older)
    assert any(m == "### older.csv" for m in messages(at, "markdown"))


def test_another_users_batch_in_the_url_does_not_open(
    queued: Runtime, app: Callable[..., AppTest]
) -> None:
    grant(queued, "bob", 100)
    theirs = batches.batch_of_run(queued, "bob", submit(queued, "bob", label="bob-secret.csv"))
    submit(queued, "alice", label="mine.csv")
    at = open_runs(app, batch=theirs)
    shown = messages(at, "markdown")
    assert "### mine.csv" in shown and all("bob-secret" not in m for m in shown)
    assert at.query_params["batch"] != theirs
