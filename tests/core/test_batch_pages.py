"""The Runs page at any history size (issue 11, item 5): one page of batches and one page
of a batch's rows come from the DB (LIMIT/OFFSET, totals from aggregates), and agree with
the whole-history read models they replace (``load_batches``, ``combined_state``,
``current``) on a state DB holding every kind of batch: parts, re-runs that took over
every row or only some, a running batch, a stopped one, other owners, older dates."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy.engine import Connection

from phone_core import batch_views, bootstrap, db, ui_batches
from phone_core.batch_views import BatchQuery
from phone_core.models import Batch, RecordStatus, RunState
from phone_core.runtime import Runtime
from tests.api.backends import PG_URL, pg_database
from tests.core import batch_oracle

NOW = datetime(2026, 11, 30, 12, 0)

RUN_COLS = (
    "run_id", "owner", "state", "max_credits", "spent", "total", "worst_case", "result_path",
    "credits_path", "cancel_requested", "notice", "label", "parent_run_id", "group_id",
    "group_seq", "created_at", "finished_at", "batch_id",
)  # fmt: skip
REC_COLS = (
    "run_id", "idx", "person_id", "first_name", "last_name", "identity", "known", "status",
    "source", "phone", "credits", "detail", "batch_row", "company_name", "company_url",
    "linkedin", "email",
)  # fmt: skip
CYCLE = ("found", "not_found", "cached", "duplicate", "error", "skipped")


class Seed:
    def __init__(self) -> None:
        self.runs: list[tuple[object, ...]] = []
        self.records: list[tuple[object, ...]] = []
        self.n = 0

    def run(
        self,
        batch: str,
        owner: str,
        state: RunState,
        label: str,
        rows: list[int],
        statuses: list[str | None],
        *,
        days_ago: float,
        group: str | None = None,
        seq: int = 0,
    ) -> str:
        self.n += 1
        run_id = f"{batch}-r{self.n}"
        created = NOW - timedelta(days=days_ago, seconds=-self.n)
        finished = None if not state.finished else created + timedelta(minutes=1)
        self.runs.append(
            (run_id, owner, state.value, 100, 0, len(rows), len(rows), "", "", False, "",
             label, None, group or batch, seq, created, finished, batch)
        )  # fmt: skip
        for i, (row, status) in enumerate(zip(rows, statuses, strict=True)):
            phone = "+14155550000" if status in ("found", "cached", "duplicate") and row % 2 else ""
            self.records.append(
                (run_id, i, f"p{row}", "Ann", f"Lee{row}", f"id{row}", True, status,
                 "vendor" if status in ("found", "not_found", "error") else "", phone, 0, "",
                 row, "", "a.com", "", "")
            )  # fmt: skip
        return run_id


def statuses(n: int, start: int = 0) -> list[str | None]:
    return [CYCLE[(start + i) % len(CYCLE)] for i in range(n)]


def seed_history(conn: Connection) -> None:
    s = Seed()
    done, stop = RunState.COMPLETED, RunState.CREDIT_LIMIT_REACHED
    # Old: ann's list from 40 days ago, and 30 small batches so that there are pages.
    s.run("old", "ann", done, "Old list.csv", list(range(5)), statuses(5), days_ago=40)
    for k in range(30):
        s.run(f"s{k:02d}", "ann", done, f"leads-{k:02d}.csv", [0, 1], statuses(2, k),
              days_ago=20 - k / 2)  # fmt: skip
    # Three parts of one upload.
    for p in range(3):
        s.run("parts", "ann", done, f"big.csv (part {p + 1}/3)", list(range(p * 4, p * 4 + 4)),
              statuses(4, p), days_ago=3, seq=p)  # fmt: skip
    # Stopped by the cap, then a re-run that took over every row not processed: completed.
    s.run("fixed", "ann", stop, "fixed.csv", list(range(6)),
          ["found", "found", "not_processed", "not_processed", "not_processed", "not_processed"],
          days_ago=2.5)  # fmt: skip
    s.run("fixed", "ann", done, "fixed.csv", [2, 3, 4, 5], ["found", "error", "found", None],
          days_ago=2.4, group="fixed-again")  # fmt: skip
    # The same, but the re-run took over some rows only: still stopped early.
    s.run("capped", "ann", stop, "capped.csv", list(range(6)),
          ["found", "not_found", "found", "not_processed", "not_processed", "not_processed"],
          days_ago=2)  # fmt: skip
    s.run("capped", "ann", done, "capped.csv", [3, 4], ["found", "not_found"], days_ago=1.9,
          group="capped-again")  # fmt: skip
    # Running: half settled; a re-run still pending on a finished batch's row.
    s.run("live", "ann", RunState.RUNNING, "live leads.csv", list(range(8)),
          [*statuses(4), None, None, None, None], days_ago=0.1)  # fmt: skip
    s.run("redo", "ann", done, "redo.csv", [0, 1, 2], ["found", "error", "error"], days_ago=1)
    s.run("redo", "ann", RunState.RUNNING, "redo.csv", [1, 2], ["found", None], days_ago=0.5,
          group="redo-again")  # fmt: skip
    # Someone else's: cancelled with rows not processed.
    s.run("bobs", "bob", RunState.CANCELLED, "Bob's October list.csv", list(range(3)),
          ["found", "not_processed", "not_processed"], days_ago=1.5)  # fmt: skip
    db.bulk_insert(conn, db.runs, RUN_COLS, s.runs)
    db.bulk_insert(conn, db.run_records, REC_COLS, s.records)


@pytest.fixture
def history(memory_rt: Runtime) -> Iterator[Runtime]:
    with memory_rt.db.begin() as conn:
        seed_history(conn)
    setattr(sys, bootstrap._GUARD_ATTR, memory_rt)  # ui_api's runtime
    yield memory_rt
    delattr(sys, bootstrap._GUARD_ATTR)


REFERENCE_STATES = {
    "all": lambda b: True,
    "active": lambda b: not b.state.finished,
    "completed": lambda b: b.state == RunState.COMPLETED,
    "stopped": lambda b: b.state.finished and b.state != RunState.COMPLETED,
}


def reference(everything: list[Batch], q: BatchQuery) -> list[Batch]:
    """What the page showed before: every batch read in full, then filtered in Python."""
    return [
        b
        for b in everything
        if REFERENCE_STATES[q.state](b)
        and (q.search.casefold() in b.label.casefold() or b.batch_id.startswith(q.search))
        and (q.since is None or b.created_at >= q.since)
        and (q.until is None or b.created_at < q.until)
    ]


def test_pages_of_batches_match_the_whole_history_read(history: Runtime) -> None:
    week_ago = NOW - timedelta(days=7)
    queries = [
        BatchQuery(owner, state, search)
        for owner in ("ann", "bob", None)
        for state in batch_views.BATCH_STATES
        for search in ("", "CSV", "s0", "capped")
    ] + [
        BatchQuery("ann", state, "", since, until)
        for state in batch_views.BATCH_STATES
        for since, until in ((week_ago, None), (None, week_ago))
    ]
    with history.db.connect() as conn:
        check_batch_pages(conn, queries)


def check_batch_pages(conn: Connection, queries: list[BatchQuery]) -> None:
    whole = {o: batch_views.load_batches(conn, o) for o in ("ann", "bob", None)}
    for q in queries:
        expected = reference(whole[q.owner], q)
        total = 0
        for offset in range(0, max(1, len(expected)), 10):
            page = batch_views.batch_page(conn, q, limit=10, offset=offset)
            assert page.total == len(expected), q
            assert page.batches == expected[offset : offset + 10], (q, offset)
            total += len(page.batches)
        assert total == len(expected)


def test_states_of_re_run_batches(history: Runtime) -> None:
    with history.db.connect() as conn:
        by_id = {b.batch_id: b for b in batch_views.load_batches(conn, None)}
        assert by_id["fixed"].state == RunState.COMPLETED  # the re-run took every row over
        assert by_id["capped"].state == RunState.CREDIT_LIMIT_REACHED  # rows 5, 6 not done
        assert by_id["bobs"].state == RunState.CANCELLED
        assert by_id["live"].state == RunState.RUNNING
        stopped = batch_views.batch_page(conn, BatchQuery(None, "stopped"), 50)
        assert {b.batch_id for b in stopped.batches} == {"capped", "bobs"}
        assert "fixed" in {
            b.batch_id
            for b in batch_views.batch_page(conn, BatchQuery("ann", "completed"), 100).batches
        }


def test_overview_counts_without_reading_batches(history: Runtime) -> None:
    with history.db.connect() as conn:
        ann = batch_views.batch_overview(conn, "ann")
        everyone = batch_views.batch_overview(conn, None)
        all_ann = batch_views.load_batches(conn, "ann")
    assert ann.batches == len(all_ann) == 36
    assert ann.active == sum(not b.state.finished for b in all_ann) == 2
    assert ann.newest == all_ann[0].batch_id == "live"
    assert (everyone.batches, everyone.owners) == (37, ["ann", "bob"])


@pytest.mark.parametrize("batch_id", ["parts", "fixed", "capped", "live", "redo", "old"])
@pytest.mark.parametrize("settled_only", [True, False])
def test_pages_of_rows_match_each_rows_newest_outcome(
    history: Runtime, batch_id: str, settled_only: bool
) -> None:
    with history.db.connect() as conn:
        check_row_pages(conn, batch_id, settled_only)


def check_row_pages(conn: Connection, batch_id: str, settled_only: bool) -> None:
    reference_filters = {
        "all": lambda o: True,
        "phone": lambda o: bool(o.status and o.status.carries_phone and o.phone),
        "no_phone": lambda o: not (o.status and o.status.carries_phone and o.phone),
        "failed": lambda o: o.status in (RecordStatus.NOT_PROCESSED, RecordStatus.ERROR, None),
    }
    rows = batch_views.batch_rows(conn, batch_id)
    now = batch_oracle.current(conn, rows, settled_only=settled_only)
    for key, keep in reference_filters.items():
        expected = [o for o in now if keep(o)]
        for offset in (0, 3, 6):
            got, total = batch_views.outcome_page(
                conn, rows, key, 3, offset, settled_only=settled_only
            )
            assert total == len(expected), (key, offset)
            assert got == expected[offset : offset + 3], (key, offset)
    # The counts and the chart are those rows too (the page's numbers reconcile).
    every = batch_oracle.current(conn, rows)
    assert batch_views.load_batch(conn, batch_id).counts == batch_views.tally(every)
    tally: dict[tuple[str, str | None], int] = {}
    for o in every:
        key2 = (o.source, None if o.status is None else o.status.value)
        tally[key2] = tally.get(key2, 0) + 1
    assert batch_views.outcome_tally(conn, rows) == tally


def test_ui_api_scopes_pages_to_the_user(history: Runtime) -> None:
    # A user's query for someone else's batches still gets only their own.
    mine = ui_batches.batch_page("bob", BatchQuery(owner="ann"), 1, 25)
    assert [b.batch_id for b in mine.batches] == ["bobs"] and mine.total == 1
    # Page 2 shows the next rows; the total stays.
    first = ui_batches.batch_page("ann", BatchQuery(), 1, 25)
    second = ui_batches.batch_page("ann", BatchQuery(), 2, 25)
    assert (first.total, second.total) == (36, 36)
    assert len(first.batches) == 25 and len(second.batches) == 11
    assert not {b.batch_id for b in first.batches} & {b.batch_id for b in second.batches}
    admin = ui_batches.batch_page("root", BatchQuery(owner="bob"), 1, 25, admin=True)
    assert [b.batch_id for b in admin.batches] == ["bobs"]
    # Filters combine: ann's completed batches named like "leads" from the last 2 weeks.
    q = BatchQuery(state="completed", search="leads", since=NOW - timedelta(days=14))
    combined = ui_batches.batch_page("ann", q, 1, 100)
    assert combined.total == len(combined.batches) > 0
    assert all(
        "leads" in b.label and b.created_at >= q.since and b.state == RunState.COMPLETED
        for b in combined.batches
        if q.since is not None
    )
    items, total = ui_batches.batch_rows_page("ann", "parts", "all", 2, 5)
    assert total == 12 and [o.idx for o in items] == [5, 6, 7, 8, 9]
    assert ui_batches.batch_rerunnable_count("ann", "capped") == 1  # the re-run took 2 of 3
    with pytest.raises(Exception, match="not found"):
        ui_batches.batch_rows_page("bob", "parts", "all", 1, 5)


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="PHONE_TEST_POSTGRES_URL is not set")
def test_the_same_pages_on_postgres() -> None:
    with pg_database() as url:
        engine = db.make_engine(url)
        try:
            db.migrate(engine)
            with engine.begin() as conn:
                seed_history(conn)
            with engine.connect() as conn:
                states = batch_views.BATCH_STATES
                check_batch_pages(
                    conn,
                    [
                        BatchQuery(o, st, q)
                        for o in ("ann", None)
                        for st in states
                        for q in ("", "cSv")
                    ]
                    + [BatchQuery("ann", st, "", NOW - timedelta(days=7)) for st in states],
                )
                for batch_id in ("parts", "fixed", "capped", "live", "redo"):
                    check_row_pages(conn, batch_id, True)
                    check_row_pages(conn, batch_id, False)
        finally:
            engine.dispose()
