"""The Runs page's batch list rules, without a page: pages of 25, the progress bar, and
what a part waiting for another says (defect 5: not '0 of 0'). The filters and pages
themselves are read from the DB: tests/core/test_batch_pages.py."""

from __future__ import annotations

from datetime import datetime

from phone_core.models import Batch, BatchPart, Run, RunCounts, RunState
from ui import batch_panel, run_view


def batch(name: str, state: RunState) -> Batch:
    return Batch(
        batch_id=name, owner="ann", label=name, state=state, created_at=datetime(2026, 1, 1),
        counts=RunCounts(total=4, found=2, pending=2), credits_spent=2, budget=10,
        credits_held=8, parts=[], versions=[],
    )  # fmt: skip


def test_pages_of_25() -> None:
    items = [batch(f"b{i}", RunState.COMPLETED) for i in range(60)]
    assert run_view.pages(60) == 3 and run_view.pages(0) == 1
    assert run_view.progress(items[0]) == 0.5


def test_a_waiting_part_says_what_it_waits_for() -> None:
    run = Run(
        run_id="r2", owner="ann", state=RunState.QUEUED, max_credits=0, credits_spent=0,
        credits_held=0, counts=RunCounts(total=4, pending=4), result_path="",
        credits_csv_path="", created_at=datetime(2026, 1, 1),
    )  # fmt: skip
    part = BatchPart(run=run, submission=1, part=2, parts=3, waiting_for=1)
    assert batch_panel.part_state(part) == "Waiting for part 1"
    assert batch_panel.part_name(part) == "Upload, part 2 of 3"
    rerun = BatchPart(run=run, submission=2, part=1, parts=1)
    assert (batch_panel.part_state(rerun), batch_panel.part_name(rerun)) == ("Queued", "Re-run 1")
