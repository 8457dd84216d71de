"""Retention and erasure against the embedded S3 server (rclone) with the durable worker:
the purge deletes a run's objects there, the erasure workflow rewrites them."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import pytest

from phone_core import erasure, retention, service
from phone_core.errors import NotFound
from phone_core.models import BatchCreate, PersonRecord
from phone_core.runtime import Runtime
from phone_core.sources import directory
from phone_core.storage import output_key
from tests.conftest import grant, wait_finished

EMAIL = "annika@lindqvist.example"


def _run(rt: Runtime) -> str:
    directory.load_rows(
        rt.db,
        [
            {"email": EMAIL, "phone": "(212) 555-0101"},
            {"email": "b@ok.example", "phone": "(212) 555-0102"},
        ],
        file_name="d.csv",
        loaded_by="admin",
    )
    grant(rt, "ann", 100)
    req = BatchCreate(
        records=[
            PersonRecord(id="p1", first_name="Annika", email=EMAIL),
            PersonRecord(id="p2", first_name="Bob", email="b@ok.example"),
        ],
        entity_type="person",
        max_credits=10,
    )
    run_id = service.submit_batch(rt, "ann", req).run_id
    wait_finished(rt, "ann", run_id)
    service.download(rt, "ann", run_id, "enriched.csv")  # written (or built now)
    return run_id


def test_erasure_workflow_rewrites_the_objects_then_the_purge_deletes_them(
    make_runtime: Callable[..., Runtime],
) -> None:
    rt = make_runtime(retain_outputs_days=7)
    run_id = _run(rt)
    run = service.get_run(rt, "ann", run_id)
    results_key = rt.store.key_of(run.result_path)
    assert b"2125550101" in rt.store.get(results_key)

    erasure_id = erasure.start(rt, "email", EMAIL, "dpo")  # on the DBOS queue: a worker here
    assert hasattr(rt.queue, "enqueue_workflow")
    deadline = time.monotonic() + 60
    state = ""
    while state != erasure.DONE and time.monotonic() < deadline:
        time.sleep(0.1)
        with rt.db.connect() as conn:
            state, receipt = erasure.status(conn, erasure_id)
    assert state == erasure.DONE
    assert results_key in receipt["objects_rewritten"]
    for key in receipt["objects_rewritten"]:
        body = rt.store.get(key)
        assert b"Annika" not in body and b"2125550101" not in body and b"annika" not in body
    assert b"2125550102" in rt.store.get(results_key)

    assert run.finished_at is not None
    counts = retention.purge(rt, now=run.finished_at + timedelta(days=8))
    assert counts["runs_files_deleted"] == 1 and counts["objects_deleted"] >= 3
    for name in ("results.csv", "credits.csv", "enriched.csv"):
        with pytest.raises(NotFound):
            rt.store.get(output_key(rt.store, run.result_path, name))
    assert not rt.store.delete(results_key)  # already gone: nothing to delete
