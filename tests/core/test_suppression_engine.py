"""Suppression on the embedded stack (DBOS workflow, rclone S3, SQLite): the same charges
and files as the fast tier, through the durable worker and the real object store."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

import pytest

from phone_core import service, suppression
from phone_core.models import RESULT_COLUMNS, BatchCreate, RunState
from phone_core.runtime import Runtime
from phone_core.sources.directory import load_rows
from tests.conftest import grant, wait_finished


def _csv(data: bytes) -> dict[str, dict[str, str]]:
    return {r["id"]: r for r in csv.DictReader(io.StringIO(data.decode("utf-8-sig")))}


@pytest.mark.parametrize("mode", ["flag", "withhold"])
def test_both_modes_through_the_durable_worker(
    make_runtime: Callable[..., Runtime], mode: str
) -> None:
    rt = make_runtime(waterfall=["directory"], dnc_mode=mode)
    people = [
        {"first_name": f"F{i}", "last_name": f"L{i}", "company_url": f"c{i}.com"} for i in range(3)
    ]
    load_rows(rt.db, [{**p, "phone": f"212-555-020{i}"} for i, p in enumerate(people)],
              file_name="d.csv", loaded_by="t")  # fmt: skip
    body = io.BytesIO(b"Phone Number\n+1 (212) 555-0201\n")
    suppression.load_file(rt.db, rt.settings, body, "dnc.csv", name="State DNC", loaded_by="t")
    grant(rt, "ann", 10)
    records = [{"id": f"r{i}", **p} for i, p in enumerate(people)]
    acc = service.submit_batch(
        rt, "ann", BatchCreate(records=records, entity_type="person", max_credits=10)
    )
    run = wait_finished(rt, "ann", acc.run_id, timeout=120)
    assert run.state == RunState.COMPLETED
    results = service.download(rt, "ann", run.run_id, "results.csv")
    assert results.decode().splitlines()[0] == ",".join(RESULT_COLUMNS)
    res, cred = _csv(results), _csv(service.download(rt, "ann", run.run_id, "credits.csv"))
    enriched = _csv(service.download(rt, "ann", run.run_id, "enriched.csv"))
    assert (enriched["r1"]["dnc"], enriched["r1"]["dnc_list"]) == ("true", "State DNC")
    assert enriched["r0"]["dnc"] == enriched["r2"]["dnc"] == "false"
    if mode == "flag":
        assert run.credits_spent == 3 and run.counts.dnc_flagged == 1
        assert res["r1"]["phone_number"] == "+12125550201"
        assert cred["r1"]["status"] == "found"
    else:
        assert run.credits_spent == 2 and run.counts.suppressed == 1
        assert (res["r1"]["phone_number"], res["r1"]["phone_found"]) == ("", "false")
        assert (cred["r1"]["status"], cred["r1"]["detail"]) == ("suppressed", "State DNC")
        assert cred["r1"]["credits_charged"] == "0"
    assert sum(int(r["credits_charged"]) for r in cred.values()) == run.credits_spent
