"""A big upload (issue 11, item 6) at CI size: 5,000 rows in 5 parts under one budget, from
the web app's upload path (``ingest``) to the batch's merged results, processed completely
and reconciled (counts and credits), and written a part at a time (bounded memory).

The full-size figures (100,000 rows, time and peak RSS per process) are in
``bench/bench_big_upload.py``; nothing here is timed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from phone_core import credits, db, directory_upload, ingest, runs, service, storage
from phone_core.inline import memory_runtime
from phone_core.models import RunState
from phone_core.runtime import Runtime
from tests.conftest import drain, make_settings

ROWS, PART = 5000, 1000
USER = "ann"
GRANT = 20_000
HEADER = "First Name,Last Name,Company,LinkedIn,Notes\n"


def _leads() -> bytes:
    lines = [HEADER]
    for i in range(ROWS):
        if i % 250 == 7:  # not enrichable: no LinkedIn, no company
            lines.append(f"Solo{i},,,,note {i}\n")
        elif i >= ROWS - 20:  # the last 20 repeat the first 20 people (another part)
            lines.append(
                f"First{i - (ROWS - 20)},Last,Acme,linkedin.com/in/lead-{i - (ROWS - 20)},n\n"
            )
        else:
            lines.append(f'First{i},Last,Acme,https://www.linkedin.com/in/lead-{i}/,"a, {i}"\n')
    return "".join(lines).encode()


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = memory_runtime(make_settings(tmp_path / "mem", waterfall=["directory"]))
    directory = "linkedin,phone\n" + "".join(
        f"lead-{i},(415) 555-{i % 10000:04d}\n" for i in range(0, ROWS, 10)
    )
    directory_upload.load_bytes(runtime, directory.encode(), "dir.csv", loaded_by="admin")
    with runtime.db.begin() as conn:
        credits.grant(conn, USER, GRANT)
    yield runtime
    runtime.close()


def test_a_big_upload_is_processed_completely_and_reconciles(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed = ingest.read("leads.csv", _leads(), rt.settings)
    mapping, _ = ingest.initial_mapping(rt, USER, parsed)
    pf = ingest.preflight(rt, USER, parsed, mapping)
    assert pf.rows == ROWS and pf.runs_needed == ROWS // PART

    # Written a part at a time: part n+1 is not even mapped before part n is written.
    made: list[int] = []
    written: list[int] = []
    real_parts, real_insert = ingest.upload_parts, runs.insert_records

    def parts(*args: Any) -> Iterator[service.UploadPart]:
        for part in real_parts(*args):
            assert len(made) == len(written), "a part was made before the last was written"
            made.append(len(part[0]))
            yield part

    def insert(*args: Any, **kwargs: Any) -> None:
        written.append(len(args[2]))
        real_insert(*args, **kwargs)

    monkeypatch.setattr(ingest, "upload_parts", parts)
    monkeypatch.setattr(runs, "insert_records", insert)
    accepted = ingest.submit_upload(rt, USER, parsed, mapping, pf.worst_case_credits, "big")
    monkeypatch.undo()
    assert made == written == [PART] * (ROWS // PART)
    assert len(accepted) == ROWS // PART

    with rt.db.connect() as conn:
        held = credits.summarize(conn, USER).held
    assert held == pf.worst_case_credits  # one budget, held by the first part

    done = drain(rt)
    assert set(done) == {a.run_id for a in accepted}

    got = [service.get_run(rt, USER, a.run_id) for a in accepted]
    assert all(r.state is RunState.COMPLETED for r in got)
    assert [r.counts.total for r in got] == [PART] * (ROWS // PART)
    assert sum(r.counts.pending for r in got) == 0
    skipped = sum(1 for i in range(ROWS - 20) if i % 250 == 7)
    found = len(range(0, ROWS - 20, 10))  # a directory match (none of them is skipped)
    # The last part repeats people of the first: those found there come from the cache
    # (free); the others are looked up again.
    from_cache = len(range(0, 20, 10))
    assert sum(r.counts.skipped for r in got) == skipped
    assert sum(r.counts.cached for r in got) == from_cache
    assert sum(r.counts.found for r in got) == found
    assert sum(r.counts.total for r in got) == ROWS

    # Credits: every found phone charged once, the runs' spend is the ledger's, nothing held.
    ids = [a.run_id for a in accepted]
    led = db.ledger
    with rt.db.connect() as conn:
        charged = conn.execute(
            sa.select(sa.func.sum(led.c.amount)).where(
                led.c.kind == "charge", led.c.run_id.in_(ids)
            )
        ).scalar_one()
        summary = credits.summarize(conn, USER)
    assert charged == found == sum(r.credits_spent for r in got)
    assert summary.held == 0 and summary.balance == GRANT - found

    # The batch's merged results: every row of the upload, in order.
    with rt.db.connect() as conn:
        batch = conn.execute(
            sa.select(db.runs.c.batch_id).where(db.runs.c.run_id == ids[0])
        ).scalar_one()
    body = rt.store.get(storage.batch_key(rt.store, batch, 1, "results.csv"))
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert len(rows) == ROWS
    assert [r["first_name"] for r in rows[:3]] == ["First0", "First1", "First2"]
    assert sum(1 for r in rows if r["phone_found"] == "true") == found + from_cache
