"""Helpers for tests and benchmarks that run whole batches against the fake upstream."""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from phone_core import credits, db, service
from phone_core.models import BatchCreate, PersonRecord, RecordOutcome, Run
from phone_core.records import identity_key, normalize
from phone_core.runtime import Runtime
from phone_core.sources.base import Lookup

USER = "ana"


def people(n: int, prefix: str = "p", start: int = 0) -> list[dict[str, str]]:
    """``n`` enrichable records (name + domain), distinct identities."""
    return [
        {
            "id": f"{prefix}{i}",
            "first_name": "Ann",
            "last_name": f"Lee{prefix}{i}",
            "company_name": "Acme",
            "company_url": f"https://www.acme{i % 7}.com/about",
        }
        for i in range(start, start + n)
    ]


def record_id(row: dict[str, str]) -> str:
    """The upstream ``record_id`` the engine will send for this input row."""
    person = normalize(PersonRecord(**row))
    return Lookup(0, person, identity_key(person)).record_id


def settings_for(url: str, **overrides: Any) -> dict[str, Any]:
    """Settings overrides for a runtime that uses the fake (fast retries, small breaker)."""
    base: dict[str, Any] = {
        "lantern_base_url": url,
        "lantern_api_key": "k",
        "waterfall": ["directory", "lantern"],
        "lantern_connect_timeout_sec": 1.0,
        "lantern_read_timeout_sec": 0.3,
        "lantern_backoff_base_sec": 0.01,
        "lantern_backoff_max_sec": 0.2,
        "lantern_max_attempts": 3,
        "lantern_breaker_failures": 1000,
        "lantern_breaker_pause_sec": 0.2,
        "lantern_rate_per_sec": 500.0,
        "lantern_concurrency": 4,
    }
    base.update(overrides)
    return base


@dataclass
class Finished:
    run: Run
    outcomes: list[RecordOutcome]
    credits_rows: list[dict[str, str]]

    def by_id(self) -> dict[str, dict[str, str]]:
        return {r["id"]: r for r in self.credits_rows}

    def statuses(self) -> set[tuple[str, str]]:
        return {(r["status"], r["detail"]) for r in self.credits_rows}


def submit(rt: Runtime, rows: list[dict[str, str]], max_credits: int = 10_000) -> str:
    req = BatchCreate(
        records=[PersonRecord(**r) for r in rows], entity_type="person", max_credits=max_credits
    )
    return service.submit_batch(rt, USER, req).run_id


def finish(rt: Runtime, run_id: str, timeout: float = 60.0) -> Finished:
    run = wait_finished(rt, run_id, timeout)
    outcomes = service.run_outcomes(rt, USER, run_id)
    text = service.download(rt, USER, run_id, "credits.csv").decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert sum(int(r["credits_charged"]) for r in rows) == run.credits_spent
    assert ledger_total(rt, run_id) == run.credits_spent
    return Finished(run, outcomes, rows)


def wait_finished(rt: Runtime, run_id: str, timeout: float = 60.0) -> Run:
    deadline = time.monotonic() + timeout
    while True:
        run = service.get_run(rt, USER, run_id)
        if run.state.finished:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} did not finish in {timeout}s: {run.state}")
        time.sleep(0.05)


def run_batch(rt: Runtime, rows: list[dict[str, str]], timeout: float = 60.0) -> Finished:
    return finish(rt, submit(rt, rows), timeout)


def fund(rt: Runtime, amount: int = 100_000) -> None:
    with rt.db.begin() as conn:
        credits.grant(conn, USER, amount)


def ledger_total(rt: Runtime, run_id: str) -> int:
    with rt.db.connect() as conn:
        total = conn.execute(
            sa.select(sa.func.sum(db.ledger.c.amount)).where(
                db.ledger.c.run_id == run_id, db.ledger.c.kind == "charge"
            )
        ).scalar()
    return int(total or 0)
