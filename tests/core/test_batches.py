"""Batches (issue 10): an upload is one thing whatever its size. Its parts and re-runs
share a batch id; the batch reads as the upload (combined state, counts, spend and the
budget set once); its merged files list every row in upload order with the row's newest
outcome, by version: a re-run writes a new version and the old one stays as it was."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from phone_core import batch_files, batch_views, batches, db, engine, outputs, service
from phone_core.credits import Price
from phone_core.errors import InputError, NotFound
from phone_core.models import OUTPUT_FILES, RESULT_COLUMNS, RecordOutcome, RunState
from phone_core.runtime import Runtime
from tests.conftest import drain, grant
from tests.core import batch_oracle
from tests.fakes.sources import ScriptedSource

PART_ROWS = 4  # the split threshold for these tests (MAX_BATCH is 1,000)


@pytest.fixture
def mem(memory_rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    monkeypatch.setattr(service, "MAX_BATCH", PART_ROWS)
    memory_rt.sources = [ScriptedSource("vendor", Price("vendor", 0, 1), hit_rate=1.0)]
    grant(memory_rt, "ann", 100)
    return memory_rt


def rows(n: int) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    mapped = [
        {"id": f"p{i}", "first_name": "Ann", "last_name": f"Lee{i}", "company_url": "a.com"}
        for i in range(n)
    ]
    source = [{"Name": f"Ann Lee{i}", "Site": "a.com", "Note": f"row {i + 1}"} for i in range(n)]
    return mapped, source


def upload(rt: Runtime, n: int = 10, budget: int = 6, label: str = "leads.csv") -> list[str]:
    mapped, source = rows(n)
    accepted = service.submit_upload(rt, "ann", mapped, budget, source_rows=source, label=label)
    return [a.run_id for a in accepted]


def read_csv(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode())))


def test_the_parts_of_an_upload_are_one_batch(mem: Runtime) -> None:
    run_ids = upload(mem)
    assert len(run_ids) == 3  # 4 + 4 + 2 rows
    batch_id = batches.batch_of_run(mem, "ann", run_ids[0])
    assert {batches.batch_of_run(mem, "ann", r) for r in run_ids} == {batch_id}
    (batch,) = batches.list_batches(mem, "ann")
    assert batch.batch_id == batch_id and batch.label == "leads.csv"  # no "(part 1/3)"
    assert batch.state is RunState.QUEUED and batch.counts.total == 10
    assert batch.budget == 6 and batch.credits_held == 6
    # Defect 5: a later part waits for the one before it; the budget is the batch's.
    assert [p.waiting_for for p in batch.parts] == [None, 1, 2]
    assert [p.run.counts.total for p in batch.parts] == [4, 4, 2]


def test_combined_counts_state_and_spend(mem: Runtime) -> None:
    run_ids = upload(mem)
    drain(mem)
    batch = batches.get_batch(mem, "ann", batches.batch_of_run(mem, "ann", run_ids[0]))
    c = batch.counts
    assert (c.total, c.found, c.not_processed, c.pending) == (10, 6, 4, 0)
    assert batch.credits_spent == 6 and batch.budget == 6  # set once, not once per part
    assert batch.state is RunState.CREDIT_LIMIT_REACHED
    assert batch.credits_held == 0 and batch.finished_at is not None
    assert [v.version for v in batch.versions] == [1]


def test_partial_results_while_the_batch_runs(mem: Runtime) -> None:
    run_ids = upload(mem)
    batch_id = batches.batch_of_run(mem, "ann", run_ids[0])
    assert batch_oracle.batch_outcomes(mem, "ann", batch_id) == []
    asyncio.run(engine.process_run(mem, run_ids[0]))  # the first part only
    batch = batches.get_batch(mem, "ann", batch_id)
    assert batch.state is RunState.RUNNING  # the next part waits its turn
    assert (batch.counts.found, batch.counts.pending) == (4, 6)
    assert batch.versions == []  # files come when the whole upload is done
    settled = batch_oracle.batch_outcomes(mem, "ann", batch_id)
    assert [o.person.id for o in settled] == ["p0", "p1", "p2", "p3"]
    with pytest.raises(NotFound):
        batches.download_batch(mem, "ann", batch_id, "results.csv", 1)


def test_merged_files_follow_the_upload_order_across_parts(mem: Runtime) -> None:
    run_ids = upload(mem)
    drain(mem)
    batch_id = batches.batch_of_run(mem, "ann", run_ids[0])
    results = batches.download_batch(mem, "ann", batch_id, "results.csv", 1)
    assert results.decode().splitlines()[0] == ",".join(RESULT_COLUMNS)
    parsed = read_csv(results)
    assert [r["id"] for r in parsed] == [f"p{i}" for i in range(10)]
    assert [r["phone_found"] for r in parsed] == ["true"] * 6 + ["false"] * 4
    credits_csv = read_csv(batches.download_batch(mem, "ann", batch_id, "credits.csv", 1))
    assert [r["status"] for r in credits_csv] == ["found"] * 6 + ["not_processed"] * 4
    enriched = read_csv(batches.download_batch(mem, "ann", batch_id, "enriched.csv", 1))
    assert [r["Note"] for r in enriched] == [f"row {i + 1}" for i in range(10)]
    assert batches.download_batch(mem, "ann", batch_id, "enriched.xlsx", 1)[:2] == b"PK"
    # The per-run contract files are still there (the API is per run).
    second = read_csv(service.download(mem, "ann", run_ids[1], "results.csv"))
    assert [r["id"] for r in second] == ["p4", "p5", "p6", "p7"]


def test_a_rerun_writes_a_new_version_and_the_old_one_stays(mem: Runtime) -> None:
    run_ids = upload(mem)
    drain(mem)
    batch_id = batches.batch_of_run(mem, "ann", run_ids[0])
    v1 = {n: batches.download_batch(mem, "ann", batch_id, n, 1) for n in ("results.csv",)}
    assert batches.batch_rerunnable_count(mem, "ann", batch_id) == 4
    (accepted,) = batches.rerun_batch(mem, "ann", batch_id, 10)
    rerun = service.get_run(mem, "ann", accepted.run_id)
    assert rerun.parent_run_id == run_ids[-1] and rerun.label == "leads.csv (re-run)"
    assert batches.batch_of_run(mem, "ann", rerun.run_id) == batch_id
    assert len(batches.list_batches(mem, "ann")) == 1  # still one batch
    queued = batches.get_batch(mem, "ann", batch_id)
    assert queued.state is RunState.QUEUED and [v.version for v in queued.versions] == [1]
    with pytest.raises(InputError):  # one re-run at a time
        batches.rerun_batch(mem, "ann", batch_id, 10)
    drain(mem)
    batch = batches.get_batch(mem, "ann", batch_id)
    assert [v.version for v in batch.versions] == [1, 2]
    assert batch.state is RunState.COMPLETED
    assert (batch.counts.total, batch.counts.found, batch.counts.not_processed) == (10, 10, 0)
    assert batch.credits_spent == 10 and batch.budget == 16
    assert batches.download_batch(mem, "ann", batch_id, "results.csv", 1) == v1["results.csv"]
    v2 = read_csv(batches.download_batch(mem, "ann", batch_id, "results.csv", 2))
    assert [r["id"] for r in v2] == [f"p{i}" for i in range(10)]
    assert [r["phone_found"] for r in v2] == ["true"] * 10
    enriched = read_csv(batches.download_batch(mem, "ann", batch_id, "enriched.csv", 2))
    assert [r["Note"] for r in enriched] == [f"row {i + 1}" for i in range(10)]
    assert batches.batch_rerunnable_count(mem, "ann", batch_id) == 0
    with pytest.raises(NotFound):
        batches.download_batch(mem, "ann", batch_id, "results.csv", 3)


def test_versions_are_stored_when_the_batch_ends(mem: Runtime) -> None:
    run_ids = upload(mem)
    drain(mem)
    batch_id = batches.batch_of_run(mem, "ann", run_ids[0])
    keys = [k for k in mem.store.objects if f"/batches/{batch_id}/v1/" in k]  # type: ignore[attr-defined]
    assert sorted(k.rsplit("/", 1)[1] for k in keys) == [
        "credits.csv", "enriched-excel.csv", "enriched.csv", "enriched.xlsx", "results.csv",
    ]  # fmt: skip


def test_a_run_rerun_through_the_api_joins_its_batch(mem: Runtime) -> None:
    run_ids = upload(mem)
    drain(mem)
    accepted = service.rerun(mem, "ann", run_ids[1], 10)  # part 2: rows 7 and 8 left
    assert service.get_run(mem, "ann", accepted.run_id).counts.total == 2
    drain(mem)
    batch_id = batches.batch_of_run(mem, "ann", run_ids[0])
    v2 = read_csv(batches.download_batch(mem, "ann", batch_id, "results.csv", 2))
    assert [r["phone_found"] for r in v2] == ["true"] * 8 + ["false"] * 2
    assert batches.get_batch(mem, "ann", batch_id).state is RunState.CREDIT_LIMIT_REACHED


def test_cancel_stops_every_unfinished_part(mem: Runtime) -> None:
    run_ids = upload(mem)
    batch_id = batches.batch_of_run(mem, "ann", run_ids[0])
    batch = batches.cancel_batch(mem, "ann", batch_id)
    assert batch.cancel_requested
    drain(mem)
    batch = batches.get_batch(mem, "ann", batch_id)
    assert {p.run.state for p in batch.parts} == {RunState.CANCELLED}
    assert batch.state is RunState.CANCELLED and batch.credits_spent == 0
    assert batch.counts.not_processed == 10


def test_batches_are_their_owners(mem: Runtime) -> None:
    run_ids = upload(mem)
    batch_id = batches.batch_of_run(mem, "ann", run_ids[0])
    for call in (
        lambda: batches.get_batch(mem, "bob", batch_id),
        lambda: batches.batch_of_run(mem, "bob", run_ids[0]),
        lambda: batches.cancel_batch(mem, "bob", batch_id),
        lambda: batches.download_batch(mem, "bob", batch_id, "results.csv", 1),
    ):
        with pytest.raises(NotFound):
            call()
    assert batches.list_batches(mem, "bob") == []
    assert batches.get_batch(mem, "root", batch_id, admin=True).owner == "ann"
    assert len(batches.list_batches(mem, "root", admin=True)) == 1
    drain(mem)
    with pytest.raises(NotFound):  # spending is the owner's
        batches.rerun_batch(mem, "bob", batch_id, 5)


def test_a_single_run_is_its_own_batch(mem: Runtime) -> None:
    (run_id,) = upload(mem, n=3, budget=3, label="small.csv")
    drain(mem)
    batch = batches.get_batch(mem, "ann", run_id)  # the batch id is the run id
    assert batch.label == "small.csv" and len(batch.parts) == 1
    assert batch.state is RunState.COMPLETED and batch.counts.found == 3
    per_run = service.download(mem, "ann", run_id, "results.csv")
    assert batches.download_batch(mem, "ann", run_id, "results.csv", 1) == per_run


def test_existing_runs_are_backfilled_into_batches(tmp_path: Path) -> None:
    """The migration: a split upload's parts become one batch with their upload rows;
    a re-run joins its parent's batch, its records mapped to the rows it re-ran."""
    from alembic import command
    from alembic.config import Config

    engine_ = db.make_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(db.__file__).parent / "migrations"))
    now = db.utcnow()

    def run(run_id: str, group: str | None, seq: int, parent: str | None = None) -> None:
        conn.execute(
            sa.insert(db.runs).values(
                run_id=run_id, owner="ann", state="completed", max_credits=1, spent=0,
                total=2, worst_case=1, result_path="", credits_path="", cancel_requested=False,
                notice="", label="x", parent_run_id=parent, group_id=group, group_seq=seq,
                created_at=now.replace(microsecond=len(run_id) + seq),
            )
        )  # fmt: skip

    def rec(run_id: str, idx: int, status: str, detail: str = "") -> None:
        conn.execute(
            sa.insert(db.run_records).values(
                run_id=run_id, idx=idx, person_id=f"{run_id}-{idx}", identity="", known=True,
                status=status, source="", phone="", credits=0, detail=detail,
            )
        )  # fmt: skip

    with engine_.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0005_notifications")  # the revision before 0004
        run("a1", "g", 0)
        run("a2", "g", 1)
        rec("a1", 0, "found")
        rec("a1", 1, "found")
        rec("a2", 0, "not_processed", "credit_limit")
        rec("a2", 1, "error")
        run("a2r", None, 0, parent="a2")
        rec("a2r", 0, "found")
        rec("a2r", 1, "found")
        command.upgrade(cfg, "head")
        got = dict(conn.execute(sa.select(db.runs.c.run_id, db.runs.c.batch_id)).all())
        mapped = {
            (r, i): b
            for r, i, b in conn.execute(
                sa.select(db.run_records.c.run_id, db.run_records.c.idx, db.run_records.c.batch_row)
            )
        }
    engine_.dispose()
    assert got == {"a1": "g", "a2": "g", "a2r": "g"}
    assert mapped[("a1", 1)] == 1 and mapped[("a2", 0)] == 1000 and mapped[("a2", 1)] == 1001
    assert (mapped[("a2r", 0)], mapped[("a2r", 1)]) == (1000, 1001)


def test_combined_state_rules() -> None:
    from datetime import datetime

    from phone_core.batch_views import combined_state
    from phone_core.runs import RunRow

    def row(run_id: str, state: RunState, group: str | None = None, seq: int = 0) -> RunRow:
        return RunRow(
            run_id=run_id, owner="ann", state=state, max_credits=1, spent=0, total=1,
            worst_case=1, result_path="", credits_path="", cancel_requested=False, notice="",
            disabled_sources={}, label="", parent_run_id=None, group_id=group, group_seq=seq,
            created_at=datetime(2026, 1, 1), started_at=None, finished_at=None,
        )  # fmt: skip

    done, queued = RunState.COMPLETED, RunState.QUEUED
    assert combined_state([row("a", queued, "g"), row("b", queued, "g", 1)], set()) is queued
    between = [row("a", done, "g"), row("b", queued, "g", 1)]
    assert combined_state(between, set()) is RunState.RUNNING  # the next part's turn
    rerun_queued = [row("a", RunState.CREDIT_LIMIT_REACHED), row("b", queued)]
    assert combined_state(rerun_queued, {"a"}) is queued
    stops = [row("a", RunState.CREDIT_LIMIT_REACHED), row("b", RunState.CANCELLED)]
    assert combined_state(stops, {"a", "b"}) is RunState.CANCELLED  # the worst
    assert combined_state(stops, {"a"}) is RunState.CREDIT_LIMIT_REACHED  # b's rows are done
    assert combined_state(stops, set()) is done  # every row has an outcome


def test_merged_files_are_written_a_window_at_a_time(
    mem: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch's files are written from windows of rows read one after the other (bounded
    memory at 100,000 rows), never from a list of every outcome, and come out exactly as
    built from that list: a column first seen in the last window is in the header, and a
    value Excel would mangle there keeps the XLSX column text from the first row."""
    mapped, source = rows(10)
    source[9]["Late"] = "only here"
    for i, row in enumerate(source):
        row["Code"] = "0042" if i == 9 else str(100 + i)  # a leading zero in the last row
    accepted = service.submit_upload(mem, "ann", mapped, 6, source_rows=source, label="w.csv")
    monkeypatch.setattr(batch_files, "WINDOW", 3)
    biggest: list[int] = []
    real_window = batch_views.current_window

    def window(*args: Any) -> list[RecordOutcome]:
        got = real_window(*args)
        biggest.append(len(got))
        return got

    monkeypatch.setattr(batch_views, "current_window", window)
    drain(mem)
    batch_id = batches.batch_of_run(mem, "ann", accepted[0].run_id)
    assert len(batches.rerun_batch(mem, "ann", batch_id, 10)) == 1
    drain(mem)
    assert biggest and max(biggest) <= 3

    rows_ = batches.get_batch(mem, "ann", batch_id)
    with mem.db.connect() as conn:
        runs_ = batch_views.batch_rows(conn, batch_id)
        for version in (1, 2):
            parts = batch_views.version_rows(runs_, version)
            items = batch_oracle.current(conn, parts)
            for name in OUTPUT_FILES:
                stored = batches.download_batch(mem, "ann", batch_id, name, version)
                assert stored == outputs.build(name, items), (version, name)
    assert [v.version for v in rows_.versions] == [1, 2]
    enriched = read_csv(batches.download_batch(mem, "ann", batch_id, "enriched.csv", 2))
    assert enriched[0]["Late"] == "" and enriched[9]["Late"] == "only here"
    sheet = load_workbook(
        io.BytesIO(batches.download_batch(mem, "ann", batch_id, "enriched.xlsx", 2))
    ).active
    assert sheet is not None
    codes = [c.value for c in sheet["D"]]  # Name, Site, Note, Code
    assert codes[0] == "Code" and codes[1] == "100" and codes[-1] == "0042"
