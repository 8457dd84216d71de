"""The daily purge is a DBOS scheduled workflow: a worker registers the schedule, and a
tick of it (triggered now) purges as of its scheduled time and records it."""

from __future__ import annotations

from collections.abc import Callable

from dbos import DBOS

from phone_core import retention, workflow
from phone_core.runtime import Runtime


def test_the_worker_schedules_the_daily_purge(make_runtime: Callable[..., Runtime]) -> None:
    rt = make_runtime(retain_records_days=30, retention_cron="15 4 * * *")
    assert rt.is_worker
    schedule = DBOS.get_schedule(workflow.RETENTION_SCHEDULE)
    assert schedule is not None and schedule["schedule"] == "15 4 * * *"
    DBOS.trigger_schedule(workflow.RETENTION_SCHEDULE).get_result()
    with rt.db.connect() as conn:
        (last,) = retention.last_purges(conn)
    assert last.trigger == "schedule" and last.finished_at is not None
    assert last.policy["records_days"] == 30
