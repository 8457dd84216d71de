"""The batch engine end to end on the embedded defaults (rclone S3, SQLite, DBOS)."""

from __future__ import annotations

import csv
import io
import time

import pytest

from phone_core import credits, service
from phone_core.errors import InsufficientCredits
from phone_core.models import RESULT_COLUMNS, BatchCreate, RunState
from phone_core.runtime import Runtime
from phone_core.sources.directory import load_rows
from tests.conftest import grant, wait_finished


def _csv(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode())))


def _phone(i: int) -> str:
    return f"+1212555{i % 10000:04d}"


def _directory(rt: Runtime, n: int) -> None:
    rows = [
        {
            "first_name": f"First{i}",
            "last_name": f"Last{i}",
            "company_url": f"co{i}.com",
            "linkedin": f"person-{i}",
            "phone": f"(212) 555-{i % 10000:04d}",
        }
        for i in range(n)
    ]
    load_rows(rt.db, rows, file_name="dir.csv", loaded_by="test")


def _wait(rt: Runtime, user: str, run_id: str) -> object:
    return wait_finished(rt, user, run_id, timeout=120)


def test_thousand_records_end_to_end(rt: Runtime) -> None:
    """1000 records: found, not found, skipped, duplicates; outputs checked column by column."""
    _directory(rt, 600)
    grant(rt, "ann", 2000)
    records = []
    for i in range(1000):
        if i < 500:  # in the directory, by name + domain (URL form) or by linkedin URL
            rec = (
                {
                    "first_name": f" First{i} ",
                    "last_name": f"Last{i}",
                    "company_url": f"https://www.CO{i}.com/about",
                }
                if i % 2
                else {"linkedin": f"https://linkedin.com/in/person-{i}/"}
            )
        elif i < 800:  # nobody knows them
            rec = {"first_name": f"Nobody{i}", "last_name": "X", "company_name": "Ghost Inc"}
        elif i < 900:  # missing fields
            rec = {"first_name": f"Only{i}"}
        else:  # duplicates of the first 100 found people, spelled differently
            j = i - 900
            rec = (
                {"first_name": f"FIRST{j}", "last_name": f"last{j}", "company_url": f"co{j}.com"}
                if j % 2
                else {"linkedin": f"PERSON-{j}"}
            )
        records.append({"id": f"r{i}", **rec})
    acc = service.submit_batch(
        rt, "ann", BatchCreate(records=records, entity_type="person", max_credits=1000)
    )
    assert acc.result_path == f"s3://phone-enrich/phone/runs/{acc.run_id}/results.csv"
    assert acc.credits_csv_path.endswith(f"/runs/{acc.run_id}/credits.csv")
    run = wait_finished(rt, "ann", acc.run_id, timeout=120)
    assert run.state == RunState.COMPLETED
    c = run.counts
    assert (c.found, c.not_found, c.skipped, c.duplicate, c.pending) == (500, 300, 100, 100, 0)
    assert run.credits_spent == 500 and run.credits_held == 0

    raw = service.download(rt, "ann", acc.run_id, "results.csv")
    assert raw.decode().splitlines()[0] == ",".join(RESULT_COLUMNS)
    results = _csv(raw)
    assert [r["id"] for r in results] == [f"r{i}" for i in range(1000)]
    r1 = results[1]
    assert (r1["first_name"], r1["last_name"], r1["company_url"]) == ("First1", "Last1", "co1.com")
    assert (r1["phone_number"], r1["phone_found"]) == (_phone(1), "true")
    assert results[0]["linkedin"] == "person-0" and results[0]["phone_number"] == _phone(0)
    assert results[600]["phone_number"] == "" and results[600]["phone_found"] == "false"
    assert results[901]["phone_number"] == _phone(1)  # duplicate reuses the outcome

    report = _csv(service.download(rt, "ann", acc.run_id, "credits.csv"))
    assert list(report[0]) == ["id", "status", "source", "credits_charged", "detail"]
    by_status: dict[str, int] = {}
    for row in report:
        by_status[row["status"]] = by_status.get(row["status"], 0) + 1
    assert by_status == {"found": 500, "not_found": 300, "skipped": 100, "duplicate": 100}
    assert sum(int(r["credits_charged"]) for r in report) == run.credits_spent
    assert report[850]["detail"] == "missing_required_fields"
    assert report[901]["credits_charged"] == "0" and report[901]["source"] == "directory"
    with rt.db.connect() as conn:
        summary = credits.summarize(conn, "ann")
    assert (summary.balance, summary.held, summary.available) == (1500, 0, 1500)


def test_duplicates_and_cache_hits_cost_nothing(rt: Runtime) -> None:
    _directory(rt, 10)
    grant(rt, "ann", 100)
    grant(rt, "bob", 100)
    recs = [{"linkedin": f"person-{i}"} for i in range(5)] * 2
    first = service.submit_batch(
        rt, "ann", BatchCreate(records=recs, entity_type="person", max_credits=50)
    )
    run = wait_finished(rt, "ann", first.run_id)
    assert (run.counts.found, run.counts.duplicate, run.credits_spent) == (5, 5, 5)
    # anyone's later run with the same people hits the cache, free
    again = service.submit_batch(
        rt, "bob", BatchCreate(records=recs, entity_type="person", max_credits=1)
    )
    run = wait_finished(rt, "bob", again.run_id)
    assert (run.counts.cached, run.counts.duplicate, run.credits_spent) == (5, 5, 0)
    results = _csv(service.download(rt, "bob", again.run_id, "results.csv"))
    assert all(r["phone_found"] == "true" for r in results)


def test_credit_limit_reached_writes_partial_outputs(rt: Runtime) -> None:
    _directory(rt, 50)
    grant(rt, "ann", 100)
    recs = [{"id": f"p{i}", "linkedin": f"person-{i}"} for i in range(50)]
    recs += [{"id": "nf", "first_name": "A"}]  # skipped: free even after the limit
    acc = service.submit_batch(
        rt, "ann", BatchCreate(records=recs, entity_type="person", max_credits=7)
    )
    run = wait_finished(rt, "ann", acc.run_id)
    assert run.state == RunState.CREDIT_LIMIT_REACHED
    assert run.credits_spent == 7
    assert (run.counts.found, run.counts.not_processed, run.counts.skipped) == (7, 43, 1)
    report = _csv(service.download(rt, "ann", acc.run_id, "credits.csv"))
    assert len(report) == 51
    assert {r["detail"] for r in report if r["status"] == "not_processed"} == {"credit_limit"}
    assert sum(int(r["credits_charged"]) for r in report) == 7
    with rt.db.connect() as conn:
        assert credits.summarize(conn, "ann").available == 93  # the hold is released


def test_insufficient_credits_queues_nothing(rt: Runtime) -> None:
    grant(rt, "ann", 5)
    body = BatchCreate(records=[{"linkedin": "x-y"}], entity_type="person", max_credits=6)
    with pytest.raises(InsufficientCredits) as err:
        service.submit_batch(rt, "ann", body)
    assert (err.value.required, err.value.remaining) == (6, 5)
    assert service.list_runs(rt, "ann") == []
    # holds count: a queued run's max_credits is not available to a second submit
    ok = service.submit_batch(rt, "ann", body.model_copy(update={"max_credits": 5}))
    with pytest.raises(InsufficientCredits):
        service.submit_batch(rt, "ann", body.model_copy(update={"max_credits": 1}))
    wait_finished(rt, "ann", ok.run_id)


def test_ids_mode_with_unknown_ids(rt: Runtime) -> None:
    _directory(rt, 5)
    grant(rt, "ann", 100)
    grant(rt, "bob", 100)
    known = [{"id": f"k{i}", "linkedin": f"person-{i}"} for i in range(3)]
    seed = service.submit_batch(
        rt, "ann", BatchCreate(records=known, entity_type="person", max_credits=5)
    )
    wait_finished(rt, "ann", seed.run_id)
    ids = ["k0", "k1", "missing-1", "k2"]
    acc = service.submit_batch(rt, "ann", BatchCreate(ids=ids, entity_type="person", max_credits=5))
    run = wait_finished(rt, "ann", acc.run_id)
    assert (run.counts.cached, run.counts.skipped) == (3, 1)
    report = _csv(service.download(rt, "ann", acc.run_id, "credits.csv"))
    assert [(r["id"], r["status"], r["detail"]) for r in report][2] == (
        "missing-1",
        "skipped",
        "unknown_id",
    )
    # bob's person store does not hold ann's people
    other = service.submit_batch(
        rt, "bob", BatchCreate(ids=["k0"], entity_type="person", max_credits=1)
    )
    run = wait_finished(rt, "bob", other.run_id)
    assert run.counts.skipped == 1
    with pytest.raises(Exception, match="not found"):
        service.get_run(rt, "bob", acc.run_id)


def test_cancel_queued_and_running(make_runtime: object) -> None:
    rt: Runtime = make_runtime(wave_size=1, queue_concurrency=1)  # type: ignore[operator]
    _directory(rt, 400)
    grant(rt, "ann", 1000)
    recs = [{"linkedin": f"person-{i}"} for i in range(400)]
    first = service.submit_batch(
        rt, "ann", BatchCreate(records=recs, entity_type="person", max_credits=400)
    )
    second = service.submit_batch(
        rt, "ann", BatchCreate(records=recs[:5], entity_type="person", max_credits=5)
    )
    service.cancel(rt, "ann", second.run_id)  # waits behind the first: stops before starting
    deadline = time.monotonic() + 30
    while service.get_run(rt, "ann", first.run_id).counts.processed < 20:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    service.cancel(rt, "ann", first.run_id)
    run = wait_finished(rt, "ann", first.run_id)
    assert run.state == RunState.CANCELLED
    assert 20 <= run.counts.found < 400
    assert run.counts.not_processed == 400 - run.counts.found
    assert run.credits_spent == run.counts.found
    report = _csv(service.download(rt, "ann", first.run_id, "credits.csv"))
    assert {r["detail"] for r in report if r["status"] == "not_processed"} == {"cancelled"}
    queued = wait_finished(rt, "ann", second.run_id)
    assert queued.state == RunState.CANCELLED and queued.counts.not_processed == 5


def test_large_upload_splits_into_runs_under_one_budget(rt: Runtime) -> None:
    _directory(rt, 2500)
    grant(rt, "ann", 5000)
    rows = [
        {"first_name": f"First{i}", "last_name": f"Last{i}", "company_url": f"co{i}.com"}
        for i in range(2500)
    ]
    accepted = service.submit_upload(rt, "ann", rows, 1800, label="big.csv")
    assert len(accepted) == 3
    runs = [wait_finished(rt, "ann", a.run_id, timeout=120) for a in accepted]
    assert [r.counts.total for r in runs] == [1000, 1000, 500]
    assert sum(r.credits_spent for r in runs) == 1800
    assert [r.state for r in runs] == [
        RunState.COMPLETED,
        RunState.CREDIT_LIMIT_REACHED,
        RunState.CREDIT_LIMIT_REACHED,
    ]
    assert runs[2].counts.not_processed == 500
    with rt.db.connect() as conn:
        assert credits.summarize(conn, "ann").available == 5000 - 1800


def test_rerun_of_not_processed_rows(rt: Runtime) -> None:
    _directory(rt, 20)
    grant(rt, "ann", 100)
    recs = [{"id": f"p{i}", "linkedin": f"person-{i}"} for i in range(20)]
    acc = service.submit_batch(
        rt, "ann", BatchCreate(records=recs, entity_type="person", max_credits=5)
    )
    wait_finished(rt, "ann", acc.run_id)
    assert service.rerunnable_count(rt, "ann", acc.run_id) == 15
    again = service.rerun(rt, "ann", acc.run_id, max_credits=20)
    run = wait_finished(rt, "ann", again.run_id)
    assert run.parent_run_id == acc.run_id
    assert (run.counts.total, run.counts.found, run.credits_spent) == (15, 15, 15)
