"""The re-run rule (``run_views.worth_rerun``) is one rule for a run and for a batch: the
rows that ended in error or were not processed; never found, not found, duplicates,
skipped (an id with no stored person, detail ``unknown_id``) or still pending. The counts
the pages show are the rows a re-run sends."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from phone_core import batch_views, db, run_views, runs
from phone_core.models import Detail, Person, RecordStatus

# idx -> (status, detail) as the engine leaves them
ENDED = {
    0: (RecordStatus.FOUND.value, ""),
    1: (RecordStatus.NOT_FOUND.value, ""),
    2: (RecordStatus.ERROR.value, "upstream_error"),
    3: (RecordStatus.NOT_PROCESSED.value, Detail.CREDIT_LIMIT.value),
    4: (RecordStatus.SKIPPED.value, Detail.UNKNOWN_ID.value),  # as the engine marks it
    5: (RecordStatus.NOT_PROCESSED.value, Detail.CANCELLED.value),
    6: (None, ""),  # pending
}


def test_one_rule_for_a_run_and_its_batch(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        db.migrate(engine)
        n = len(ENDED)
        with engine.begin() as conn:
            new = runs.NewRun(
                run_id="r1", owner="ann", max_credits=n, total=n, worst_case=n,
                result_path="s3://b/r1/results.csv", credits_path="s3://b/r1/credits.csv",
            )  # fmt: skip
            runs.create(conn, new)
            people = [Person(id=f"p{i}") for i in range(n)]
            runs.insert_records(conn, "r1", people, [""] * n, [None] * n, [True] * n, None)
            for idx, (status, detail) in ENDED.items():
                conn.execute(
                    sa.update(db.run_records)
                    .where(db.run_records.c.run_id == "r1", db.run_records.c.idx == idx)
                    .values(status=status, detail=detail)
                )
        with engine.connect() as conn:
            got = [o.idx for o in run_views.failed_outcomes(conn, "r1")]
            assert got == [2, 3, 5]
            assert run_views.failed_count(conn, "r1") == 3
            rows = batch_views.batch_rows(conn, runs.get(conn, "r1").batch_id, "ann")
            assert [o.idx for o in batch_views.current_failed(conn, rows)] == got
            assert batch_views.count_current_failed(conn, rows) == 3
    finally:
        engine.dispose()
