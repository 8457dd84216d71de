"""Suppression and the audit log on PostgreSQL: list loading (bulk insert), the check in
the settling transaction, the re-check, and the audit rows (JSON details) round-trip."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from phone_core import audit, credits, dnc, service, suppression
from phone_core.inline import memory_runtime
from phone_core.models import BatchCreate
from phone_core.sources.directory import load_rows
from tests.conftest import drain, make_settings
from tests.core.test_postgres_scaleout import PG_URL, pg_urls  # noqa: F401 (fixture)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_URL, reason="PHONE_TEST_POSTGRES_URL is not set"),
]


def test_withhold_and_recheck_on_postgres(tmp_path: Path, pg_urls: tuple[str, str]) -> None:  # noqa: F811
    settings = make_settings(
        tmp_path / "pg", waterfall=["directory"], dnc_mode="withhold", database_url=pg_urls[0]
    )
    rt = memory_runtime(settings)
    try:
        people = [{"first_name": f"F{i}", "last_name": f"L{i}", "company_url": f"c{i}.com"}
                  for i in range(3)]  # fmt: skip
        load_rows(rt.db, [{**p, "phone": f"212-555-030{i}"} for i, p in enumerate(people)],
                  file_name="d.csv", loaded_by="t")  # fmt: skip
        body = io.BytesIO(b"phone\n2125550301\n2125550301\n")
        with audit.acting("boss", ip="192.0.2.1", via="cli"):
            info = suppression.load_file(rt.db, settings, body, "a.csv", name="A", loaded_by="b")
            with rt.db.begin() as conn:
                credits.grant(conn, "ann", 10)
        assert (info.phones, info.rows_read) == (1, 2)
        acc = service.submit_batch(
            rt,
            "ann",
            BatchCreate(
                records=[{"id": f"r{i}", **p} for i, p in enumerate(people)],
                entity_type="person",
                max_credits=10,
            ),
        )
        drain(rt)
        run = service.get_run(rt, "ann", acc.run_id)
        assert run.credits_spent == 2 and run.counts.suppressed == 1
        rows = csv.DictReader(
            io.StringIO(service.download(rt, "ann", run.run_id, "credits.csv").decode())
        )
        assert {r["id"]: r["status"] for r in rows}["r1"] == "suppressed"
        body = io.BytesIO(b"phone\n2125550302\n")
        suppression.load_file(rt.db, settings, body, "b.csv", name="B", loaded_by="b")
        report = dnc.recheck_past_runs(rt)
        assert [(f.run_id, f.newly_marked) for f in report.runs] == [(run.run_id, 1)]
        with rt.db.connect() as conn:
            (load,) = audit.query(conn, action=audit.SUPPRESSION_LOAD, actor="boss")
            grants = audit.query(conn, action=audit.CREDIT_GRANT)
        assert load.detail == {"phones": 1, "people": 0, "rows_read": 2, "rows_refused": 0,
                               "replaced": False}  # fmt: skip
        assert load.ip == "192.0.2.1" and grants[0].detail == {"amount": 10}
    finally:
        rt.close()
